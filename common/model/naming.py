"""The one name rule: every Redis key, S3 key and warehouse name ferry uses is built here.

No other module writes a key literal. Keys start with PREFIX, then the pipeline and
the table token (`schema.table`).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timezone
from urllib.parse import quote

PREFIX = "ferry"
PLAN_NAME = "plan.json"
MARKER_NAME = "_committed.json"
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ATTEMPT = re.compile(r"^s\d+-[0-9a-f]{8}$")


def split_table_key(key: str) -> tuple[str, str]:
    """`schema.table` as written in a pipeline file -> (schema, table).

    A part holding a dot or a quote is written in double quotes or backticks, with a quote
    inside doubled: shop."Order Lines", `my.db`.orders, shop."a""b". Unquoted parts may
    hold anything else (spaces and non-ASCII letters included). ValueError says what is wrong."""
    parts: list[str] = []
    i = 0
    while True:
        if i < len(key) and key[i] in "\"`":
            quote_char, i, buf = key[i], i + 1, []
            while True:
                j = key.find(quote_char, i)
                if j < 0:
                    raise ValueError(f"table key {key!r}: unclosed {quote_char}")
                buf.append(key[i:j])
                if key[j + 1:j + 2] == quote_char:  # a doubled quote stands for one
                    buf.append(quote_char)
                    i = j + 2
                    continue
                i = j + 1
                break
            parts.append("".join(buf))
        else:
            j = i
            while j < len(key) and key[j] not in ".\"`":
                j += 1
            parts.append(key[i:j])
            i = j
        if i == len(key):
            break
        if key[i] != ".":
            raise ValueError(f"table key {key!r}: expected '.' after {parts[-1]!r}")
        i += 1
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f"table key {key!r} must be written schema.table (quote a part that holds "
                         f"a dot: shop.\"a.b\")")
    return parts[0], parts[1]


def table_token(table_key: str) -> str:
    """`schema.table` as it appears in Redis keys, with unsafe characters escaped."""
    return quote(table_key, safe="._-$")


_S3_SAFE = re.compile(r"^[a-z0-9._=-]+$")


def s3_table_token(table_key: str) -> str:
    """`schema.table` as it appears in S3 keys and manifest URLs: only [a-z0-9._=-], so no
    key needs escaping anywhere (loaders that put spaces, `+` or `%XX` in manifest URLs broke,
    awslabs/aws-lambda-redshift-loader #90, #204). A key already made of those is itself;
    any other is a readable slug and 8 hex digits of its SHA-256, so two tables never meet."""
    schema, table = split_table_key(table_key)
    if _S3_SAFE.match(schema) and _S3_SAFE.match(table) and "." not in schema + table:
        return f"{schema}.{table}"

    def slug(part: str) -> str:
        return (re.sub(r"[^a-z0-9_-]+", "_", part.lower()).strip("_") or "_")[:48]

    digest = hashlib.sha256(json.dumps([schema, table]).encode()).hexdigest()[:8]
    return f"{slug(schema)}.{slug(table)}-{digest}"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: r<UTC time to the millisecond>-<random>. Runs of one table
    are ordered by id (a full reload never swaps in an older snapshot), and two runs can start
    within one second; ids of the older form, without milliseconds, still sort before newer."""
    now = now or datetime.now(timezone.utc)
    return f"r{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not valid")
    return run_id


def new_attempt_id(session: int) -> str:
    """The fence token of one chunk attempt: s<session>-<random>. Random rather than counted,
    so it stays unique even after Redis lost its counters: two attempts never share a key."""
    return f"s{int(session)}-{secrets.token_hex(4)}"


def check_attempt_id(attempt_id: str) -> str:
    if not _ATTEMPT.match(attempt_id):
        raise ValueError(f"attempt id {attempt_id!r} is not valid")
    return attempt_id


# ---- Redis -----------------------------------------------------------------

def _table_base(pipeline: str, table_key: str) -> str:
    return f"{PREFIX}:{pipeline}:{table_token(table_key)}"


def table_state_key(pipeline: str, table_key: str) -> str:
    """Hash: cursor, statuses, cumulative totals, active run."""
    return f"{_table_base(pipeline, table_key)}:state"


def table_lock_key(pipeline: str, table_key: str) -> str:
    """String: owner token (the run id) with a TTL; one run per table."""
    return f"{_table_base(pipeline, table_key)}:lock"


def load_lock_key(pipeline: str, table_key: str) -> str:
    """String: owner token with a TTL; one load per table."""
    return f"{_table_base(pipeline, table_key)}:loadlock"


def table_schema_key(pipeline: str, table_key: str) -> str:
    """String: JSON of the recorded column mapping."""
    return f"{_table_base(pipeline, table_key)}:schema"


def pending_parts_key(pipeline: str, table_key: str) -> str:
    """Hash: S3 key of a committed part awaiting load -> JSON {run, chunk, rows, bytes}."""
    return f"{_table_base(pipeline, table_key)}:pending"


def runs_key(pipeline: str, table_key: str) -> str:
    """List: run ids of the table, oldest first."""
    return f"{_table_base(pipeline, table_key)}:runs"


def run_meta_key(pipeline: str, table_key: str, run_id: str) -> str:
    """Hash: a run's status, bounds, chunk count, contiguous index and session totals."""
    return f"{_table_base(pipeline, table_key)}:run:{check_run_id(run_id)}:meta"


def run_chunks_key(pipeline: str, table_key: str, run_id: str) -> str:
    """Hash: chunk number -> JSON {lo, hi, state, rows, parts, bytes, worker}."""
    return f"{_table_base(pipeline, table_key)}:run:{check_run_id(run_id)}:chunks"


def run_session_key(pipeline: str, table_key: str, run_id: str, session: int) -> str:
    """Hash: one session's totals (a run is resumed in a new session)."""
    return f"{_table_base(pipeline, table_key)}:run:{check_run_id(run_id)}:session:{int(session)}"


def run_segments_key(pipeline: str, table_key: str, run_id: str, session: int) -> str:
    """Hash: one session's dispatched segments (id -> JSON {token, chunks, sent, counts})."""
    return f"{run_session_key(pipeline, table_key, run_id, session)}:segments"


def run_attempts_key(pipeline: str, table_key: str, run_id: str) -> str:
    """Hash: chunk number -> attempts started."""
    return f"{_table_base(pipeline, table_key)}:run:{check_run_id(run_id)}:attempts"


def schema_log_key(pipeline: str, table_key: str) -> str:
    """List: JSON {at, run, change} of every schema change seen and every ALTER issued."""
    return f"{_table_base(pipeline, table_key)}:schema_log"


def orphans_key(pipeline: str, table_key: str) -> str:
    """Hash: S3 key of an object no load will read -> JSON {run, chunk, attempt, reason}."""
    return f"{_table_base(pipeline, table_key)}:orphans"


def refused_key(pipeline: str, table_key: str) -> str:
    """Hash: "run:chunk" -> JSON of a chunk whose parts the warehouse refused (they wait)."""
    return f"{_table_base(pipeline, table_key)}:refused"


def reconcile_key(pipeline: str, table_key: str) -> str:
    """Hash: the table's reconcile passes (where the pass in progress goes on, the last one
    complete, totals of rows deleted and repaired)."""
    return f"{_table_base(pipeline, table_key)}:reconcile"


def skipped_key(pipeline: str, table_key: str) -> str:
    """Hash: "run:chunk" -> JSON of a refused chunk the operator gave up on (skip-range)."""
    return f"{_table_base(pipeline, table_key)}:skipped"


def early_load_key(pipeline: str, table_key: str) -> str:
    """String (with a TTL): set while an early load of the table is queued or running."""
    return f"{_table_base(pipeline, table_key)}:early_load"


def faults_key(pipeline: str, table_key: str) -> str:
    """Hash: injected failures per chunk (tests only, see common/state/faults.py)."""
    return f"{_table_base(pipeline, table_key)}:faults"


def source_slots_key(source: str) -> str:
    """Sorted set: read-slot holder -> lease expiry (ms) of one source of connections.yml,
    shared by every pipeline that reads it."""
    return f"{PREFIX}:source:{quote(source, safe='._-')}:slots"


def table_pattern(pipeline: str, table_key: str) -> str:
    """SCAN pattern of every Redis key of one table (watermark reset)."""
    return f"{_table_base(pipeline, table_key)}:*"


def pipeline_pattern(pipeline: str) -> str:
    """SCAN pattern of every key of a pipeline (tests and resets only)."""
    return f"{PREFIX}:{pipeline}:*"


# ---- S3 --------------------------------------------------------------------

S3_LAYOUT_FIELD = "s3_layout"
"""The table-state field that says which S3 prefix a table's objects live under: `safe`
(s3_table_token) for tables first planned since, `legacy` (the percent-encoded token) for
tables that had state before; a table keeps its layout, so no run ever spans two."""


def table_prefix(s3_prefix: str, pipeline_prefix: str, table_key: str, legacy: bool = False) -> str:
    """S3 prefix (ending in /) under which all of a table's objects live."""
    parts = [p.strip("/") for p in (s3_prefix, pipeline_prefix) if p and p.strip("/")]
    token = table_token(table_key) if legacy else s3_table_token(table_key)
    return "/".join(parts + [token]) + "/"


def table_prefixes(s3_prefix: str, pipeline_prefix: str, table_key: str) -> list[str]:
    """Every prefix a table's objects may be under (the safe one first, then the legacy one
    if it differs): what rebuild, reset and s3clean read."""
    found = [table_prefix(s3_prefix, pipeline_prefix, table_key),
             table_prefix(s3_prefix, pipeline_prefix, table_key, legacy=True)]
    return list(dict.fromkeys(found))


def chunk_prefix(table_prefix_: str, run_id: str, chunk: int) -> str:
    """S3 prefix of every attempt of one chunk."""
    return f"{run_prefix(table_prefix_, run_id)}chunk={chunk:06d}/"


def attempt_prefix(table_prefix_: str, run_id: str, chunk: int, attempt_id: str) -> str:
    """S3 prefix of one attempt's objects: two attempts of a chunk never write the same key."""
    return f"{chunk_prefix(table_prefix_, run_id, chunk)}attempt={check_attempt_id(attempt_id)}/"


def part_key(table_prefix_: str, run_id: str, chunk: int, attempt_id: str, part: int) -> str:
    """S3 key of one Parquet part of one chunk attempt."""
    return f"{attempt_prefix(table_prefix_, run_id, chunk, attempt_id)}part-{part:05d}.parquet"


DELETES_NAME = "deletes.parquet"


def deletes_key(table_prefix_: str, run_id: str, chunk: int, attempt_id: str) -> str:
    """S3 key of the keys a reconcile range found only in the target (common/reconcile/deletes.py)."""
    return f"{attempt_prefix(table_prefix_, run_id, chunk, attempt_id)}{DELETES_NAME}"


def is_deletes_key(key: str) -> bool:
    return key.endswith("/" + DELETES_NAME)


def run_prefix(table_prefix_: str, run_id: str) -> str:
    return f"{table_prefix_}run={check_run_id(run_id)}/"


def plan_object_key(table_prefix_: str, run_id: str) -> str:
    """S3 copy of a run's plan (chunk bounds): with the chunk markers it rebuilds Redis."""
    return f"{run_prefix(table_prefix_, run_id)}{PLAN_NAME}"


def chunk_marker_key(table_prefix_: str, run_id: str, chunk: int, attempt_id: str) -> str:
    """S3 marker an attempt writes once all its parts are uploaded, before it commits."""
    return f"{attempt_prefix(table_prefix_, run_id, chunk, attempt_id)}{MARKER_NAME}"



def cursor_override_key(table_prefix_: str) -> str:
    """S3 record of the last `watermark set`, so a rebuild keeps a cursor moved by hand."""
    return f"{table_prefix_}cursor_override.json"


def manifest_key(table_prefix_: str, load_id: str) -> str:
    """S3 key of a load's COPY manifest."""
    return f"{table_prefix_}manifests/{load_id}.json"


def object_metadata(pipeline: str, table_key: str, run_id: str | None = None) -> dict[str, str]:
    """S3 user metadata on every object ferry writes: rebuild and reset act only on objects
    that name their own pipeline and table. (Header values must be ASCII: the table token.)"""
    meta = {"pipeline": pipeline, "table": table_token(table_key)}
    if run_id:
        meta["run"] = run_id
    return meta


def is_own_object(metadata: dict[str, str], pipeline: str, table_key: str) -> bool:
    """True if an object's S3 metadata names this pipeline and table."""
    return (metadata.get("pipeline") == pipeline
            and metadata.get("table") in (table_token(table_key), table_key))


# ---- warehouse -------------------------------------------------------------

MAX_IDENTIFIER_BYTES = 127  # Redshift's limit (PostgreSQL truncates at 63)


def _fit(base: str, suffix: str = "") -> str:
    """base + suffix in at most MAX_IDENTIFIER_BYTES of UTF-8, cut at a character boundary."""
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode())
    return base.encode()[:room].decode(errors="ignore") + suffix


def column_name(source_name: str) -> str:
    """Target column name: lowercased (as Redshift folds it); a leading digit gets a `col_`
    prefix; at most 127 bytes. Collisions are refused where the mapping is built."""
    name = source_name.lower()
    if name[:1].isdigit():
        name = f"col_{name}"
    return _fit(name)


def warehouse_schema_name(name: str) -> str:
    """The target schema as Redshift stores it: lowercased, at most 127 bytes (a schema
    written `Raw_Shop` is created and found as `raw_shop`)."""
    return _fit(name.lower())


def target_table_name(target_name: str) -> str:
    """Target table name (Redshift folds names to lowercase)."""
    return column_name(target_name)


def ledger_table_name(target_table: str) -> str:
    """The load ledger of one target table. One per table: Redshift's serializable
    isolation would make parallel loads of different tables conflict on a shared one."""
    return _fit(target_table, "__ferry_ledger")


def reload_table_names(target_table: str) -> tuple[str, str]:
    """(new, old) names used while a full reload swaps a table in."""
    return _fit(target_table, "__ferry_new"), _fit(target_table, "__ferry_old")


def staging_table_name(target_table: str, load_id: str) -> str:
    """Temporary staging table of one load."""
    return _fit(target_table, f"__stage_{load_id[-6:]}")


def quote_ident(name: str) -> str:
    """Double-quoted SQL identifier (reserved words and odd names stay valid)."""
    return '"' + name.replace('"', '""') + '"'


def quote_mysql(name: str) -> str:
    """Backtick-quoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"
