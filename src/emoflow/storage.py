"""One storage convention: Parquet tables (pyarrow), written atomically.

Every table emoflow writes has its schema in :mod:`emoflow.tables`.  Writers go
through :func:`write_table` / :class:`AtomicParquetWriter`, which write to a
temporary file beside the target and ``os.replace`` it into place only when the
write is complete, so an interrupted job never leaves a file that looks finished.

A job killed mid-write (SIGKILL, node failure) leaves its temporary file behind
(``.<name>.<random>.tmp``, hidden).  Only the job that writes a target ever writes
its temporaries (Snakemake runs one job per output at a time), so the next write of
the same target removes them before it starts: a rerun leaves no debris.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stale_pattern(name: str, suffix: str) -> re.Pattern:
    """Names of the temporaries ``tempfile.mkstemp``/``mkdtemp`` made for target ``name``
    (their random part is 8 characters of ``[a-z0-9_]``), and nothing else."""
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp{re.escape(suffix)}")


def remove_stale(path: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Remove the temporaries an interrupted earlier write of ``path`` left beside it."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern, removed = _stale_pattern(path.name, suffix), []
    for entry in path.parent.iterdir():
        if pattern.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def _tmp_beside(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; finished files get the usual mode
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; move it into place on success."""
    path = Path(path)
    tmp = _tmp_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory beside ``path``; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_table(table: pa.Table, path: str | os.PathLike, schema: pa.Schema | None = None) -> None:
    """Write ``table`` (cast to ``schema`` when given) atomically as Parquet."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=COMPRESSION)


def write_rows(rows: list[dict], path: str | os.PathLike, schema: pa.Schema) -> None:
    """Write a list of dicts as a Parquet table with ``schema`` (an empty list is fine)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    write_table(table, path, schema)


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)


class AtomicParquetWriter:
    """Streaming Parquet writer (row group by row group) with an atomic commit.

    Use as a context manager: on a clean exit the file is moved into place, on an
    exception the partial temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema):
        self.path = Path(path)
        self.schema = schema
        self._tmp = _tmp_beside(self.path)
        self._writer = pq.ParquetWriter(self._tmp, schema, compression=COMPRESSION)
        self.rows_written = 0

    def write_rows(self, rows: list[dict]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows_written += len(rows)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._writer.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
        return False
