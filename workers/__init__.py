"""What lives per worker process: connections and clients opened after fork."""
