"""ferry: incremental MySQL -> Redshift copies through Parquet on S3, on Celery workers."""
import common  # noqa: F401  (imports mysql.connector before pyarrow)
