"""Writing a chunk's record batches as Parquet parts (pyarrow, snappy) of bounded size."""
from __future__ import annotations

import os
import queue
import tempfile
import threading
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from common.config.settings import settings
from common.model.records import Part
from common.store.s3 import Store


ROW_GROUP_ROWS = 50_000
ROW_GROUP_BYTES = 16 * 1024 * 1024


class PartWriter:
    """Buffers batches into a Parquet file and uploads it once it reaches part_mb or part_rows.

    Parts are numbered from 0 and named by key_for(number), so writing the same chunk
    again produces the same keys.
    """

    def __init__(self, store: Store, key_for: Callable[[int], str], schema: pa.Schema,
                 part_mb: int, part_rows: int | None, metadata: dict[str, str]) -> None:
        self.store = store
        self.key_for = key_for
        self.schema = schema
        self.part_bytes = part_mb * 1024 * 1024
        # A part holds a few row groups at least, so it closes near part_mb.
        self.row_group_bytes = min(ROW_GROUP_BYTES, self.part_bytes // 4)
        self.part_rows = part_rows
        self.metadata = metadata
        self.parts: list[Part] = []
        self._sink: pa.NativeFile | None = None
        self._spool: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Add a batch. Small fetch batches (wide rows are fetched a few at a time) are
        gathered into row groups of up to ROW_GROUP_ROWS rows or row_group_bytes of Arrow
        data, so a part does not become many tiny, poorly compressed row groups."""
        while batch.num_rows:
            room = batch.num_rows if self.part_rows is None else self.part_rows - self._rows - self._pending_rows
            head, batch = batch.slice(0, room), batch.slice(room)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            self._pending_bytes += head.nbytes
            full_rows = self.part_rows is not None and self._rows + self._pending_rows >= self.part_rows
            if full_rows or self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= self.row_group_bytes:
                if self._sink is not None and self._sink.tell() + self._pending_bytes > self.part_bytes:
                    self._flush()  # this row group would take the part past part_mb: start the next
                self._write_row_group()
                if full_rows or (self._sink is not None and self._sink.tell() >= self.part_bytes):
                    self._flush()

    def close(self) -> list[Part]:
        """Upload the last part; returns every part written, in order."""
        self._write_row_group()
        self._flush()
        return self.parts

    def _write_row_group(self) -> None:
        if not self._pending:
            return
        self._open()
        assert self._writer is not None
        self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema),
                                 row_group_size=self._pending_rows)
        self._rows += self._pending_rows
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def _open(self) -> None:
        if self._writer is None:
            # The part is spooled to a local file, not held in memory: a part_mb part costs
            # disk, and memory stays within a row group (and the upload streams from the file).
            self._spool = tempfile.NamedTemporaryFile(prefix="ferry-part-", suffix=".parquet",
                                                      dir=settings().spool_dir)
            self._sink = pa.OSFile(self._spool.name, "wb")
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
            self._rows = 0

    def _flush(self) -> None:
        if self._writer is None or self._sink is None:
            return
        self._writer.close()
        self._sink.close()
        size = os.path.getsize(self._spool.name)
        key = self.key_for(len(self.parts))
        meta = dict(self.metadata, part=str(len(self.parts)), rows=str(self._rows))
        with open(self._spool.name, "rb") as body:
            self.store.put(key, body, meta)
        self._spool.close()  # (deletes the file)
        self.parts.append(Part(key=key, rows=self._rows, bytes=size))
        self._writer = self._sink = None
        self._rows = 0

    def discard(self) -> None:
        """Drop the unfinished part's local file (the read failed)."""
        if self._writer is not None:
            try:
                self._writer.close()
                self._sink.close()  # type: ignore[union-attr]
            finally:
                self._spool.close()
            self._writer = self._sink = None


class BackgroundWriter:
    """Runs a PartWriter in a thread, so Parquet encoding and the S3 upload (which release
    the GIL) overlap with fetching and converting the next batch.

    At most `depth` batches wait, which bounds memory. An error in the thread is raised
    by the next write() or by close().
    """

    _DONE = object()

    def __init__(self, writer: PartWriter, depth: int = 2) -> None:
        self.writer = writer
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort = False
        self._thread = threading.Thread(target=self._drain, name="ferry-part-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                break
            if self._error is None and not self._abort:
                try:
                    self.writer.write(item)  # type: ignore[arg-type]
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self._error = exc
        if self._error is None and not self._abort:
            try:
                self.writer.close()
            except BaseException as exc:  # noqa: BLE001
                self._error = exc

    def write(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> list[Part]:
        """Wait for the last part's upload; returns every part written, in order."""
        self._queue.put(self._DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.writer.parts

    def abort(self) -> None:
        """Stop without uploading the unfinished part (the read failed)."""
        self._abort = True
        self._queue.put(self._DONE)
        self._thread.join()
        self.writer.discard()

