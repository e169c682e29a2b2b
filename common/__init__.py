"""What several stages of a run share: config, naming, types, source, store, state, warehouse."""
# mysql.connector's C extension fails to load (silently) once pandas or pyarrow
# has been imported; importing it here, first, keeps every ferry process fast.
import mysql.connector  # noqa: F401
