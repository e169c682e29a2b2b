"""The warehouse behind one interface: Warehouse is the load transaction (transaction.py),
the target's tables (ddl.py) and the ledger (ledger.py) of one target schema; thin
subclasses (postgres.py, redshift.py) say how parts reach a table."""
from __future__ import annotations

from common.warehouse.transaction import LoadTransaction


class Warehouse(LoadTransaction):
    """A warehouse client loading into one schema (see the modules of its bases)."""
