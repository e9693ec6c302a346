"""Compare two results directories table by table.

Used to check that two runs of the workflow produced the same outputs: a SLURM run
against a local one (``scripts/ci_slurm.sh``, ``atol=1e-6``) and two local runs for
determinism (``atol=0``)::

    python tools/compare.py results/a results/b [--atol 1e-6] [--rtol 0]

Exit status 0 when equal, 1 when they differ (each difference on its own line),
2 when a directory does not exist.

What is compared (content):

* ``*.parquet`` -- schema (column names and types), schema metadata (``level``,
  ``dim``, ``classes`` ...; pandas' bookkeeping key left out), row count and every
  cell in stored order.  Floating-point cells (also inside list columns such as the
  feature vectors ``x``) must agree within ``atol + rtol * |b|``; NaN equals NaN.
  Everything else (ints, bools, strings, binary JPEG crops and frames) must be equal.
* ``*.csv`` -- header and every cell; cells that parse as numbers on both sides are
  compared as floats, the rest as text.
* ``*.json`` -- the whole document, numbers as floats; except the wall-clock timings
  (keys ``seconds`` and ``*_seconds``: ``fit_seconds``, ``train_seconds``,
  ``total_seconds``), which differ on every run, and SHA-256 digests (64 hex digits,
  e.g. ``bundle/bundle.json``'s ``files``: one per bundled file): a digest of a binary
  model or of a JSON report with timings differs on every run by construction; the files
  it names are compared themselves (the key must still be present on both sides).
* ``*.npz`` -- fitted encoder parameters (codebooks, means): array names, shapes,
  dtypes and values (floats within the tolerance).

Only presence is checked (a file missing on one side is a difference, its content is
not compared): media (``.mp4``, ``.wav``), plots (``.png``), the Markdown report
(rendered from ``report/summary.csv``, which is compared), and binary models
(``.model`` skops, ``.pt``, ``.keras``, checkpoints).  Binary model files embed
zip timestamps and pickled framework state, so byte equality means nothing; what they
compute is compared instead: their predictions (``predictions/``, ``fusion/``), the
scores and fitted parameters in their JSON sidecars, and the features they extract.

Ignored completely: logs (``*.log``, ``logs/``), benchmarks (``benchmarks/``),
Snakemake's bookkeeping (``.snakemake/``, ``.snakemake_timestamp``) -- all
run-specific by nature.  Run-specific absolute paths inside strings (the shard sheets
store the absolute path of each clip) are made comparable by replacing each run's own
results directory with ``<results>`` and its working directory (the parent of
``results/``) with ``<workdir>`` before comparing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

#: File types whose content is compared.
CONTENT_SUFFIXES = (".parquet", ".csv", ".json", ".npz")
#: Directory names skipped wherever they occur.
IGNORED_DIRS = frozenset({"logs", "benchmarks", ".snakemake"})
#: File names / suffixes skipped wherever they occur.
IGNORED_NAMES = frozenset({".snakemake_timestamp"})
IGNORED_SUFFIXES = (".log",)
#: JSON keys holding wall-clock timings.
TIMING_KEY = re.compile(r"^(.*_)?seconds$")
#: A SHA-256 hex digest (of a file's bytes).
DIGEST = re.compile(r"^[0-9a-f]{64}$")
#: Parquet schema-metadata keys that are bookkeeping, not content.
IGNORED_METADATA = frozenset({b"pandas", b"ARROW:schema"})
#: At most this many detail lines per file.
MAX_DETAILS = 10


def list_files(root) -> list[str]:
    """Relative POSIX paths of the files under ``root`` that take part in a comparison."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for name in filenames:
            if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
                continue
            found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _path_aliases(root: Path) -> list[tuple[str, str]]:
    """(prefix, placeholder) pairs that make run-specific absolute paths comparable."""
    pairs = []
    for form in {str(root.absolute()), str(root.resolve())}:
        pairs.append((form, "<results>"))
        parts = Path(form).parts
        if "results" in parts[1:]:
            last = len(parts) - 1 - parts[::-1].index("results")
            pairs.append((str(Path(*parts[:last])), "<workdir>"))
    return sorted(pairs, key=lambda p: -len(p[0]))  # longest prefix first


class _Comparer:
    def __init__(self, a: Path, b: Path, atol: float, rtol: float):
        self.atol, self.rtol = float(atol), float(rtol)
        self.alias_a, self.alias_b = _path_aliases(a), _path_aliases(b)

    # -- scalars -----------------------------------------------------------------
    @staticmethod
    def _norm(s: str, aliases) -> str:
        for prefix, placeholder in aliases:
            if prefix in s:
                s = s.replace(prefix, placeholder)
        return s

    def strings_equal(self, x: str, y: str) -> bool:
        return x == y or self._norm(x, self.alias_a) == self._norm(y, self.alias_b)

    def floats_equal(self, x: float, y: float) -> bool:
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        if math.isinf(x) or math.isinf(y):
            return x == y
        return abs(x - y) <= self.atol + self.rtol * abs(y)

    def values(self, x, y, where: str, out: list[str], json_doc: bool = False) -> None:
        """Generic comparison of JSON-like values; differences appended to ``out``.

        ``json_doc``: the values come from a JSON file (timing keys and digests skipped)."""
        if isinstance(x, bool) or isinstance(y, bool) or x is None or y is None:
            if type(x) is not type(y) or x != y:
                out.append(f"{where}: {x!r} != {y!r}")
        elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if isinstance(x, int) and isinstance(y, int):
                if x != y:
                    out.append(f"{where}: {x} != {y}")
            elif not self.floats_equal(float(x), float(y)):
                out.append(f"{where}: {x!r} != {y!r} (|diff| {abs(x - y):.3g})")
        elif isinstance(x, str) and isinstance(y, str):
            if json_doc and DIGEST.match(x) and DIGEST.match(y):
                return  # digests of run-specific bytes; see the module docstring
            if not self.strings_equal(x, y):
                out.append(f"{where}: {_short(x)!r} != {_short(y)!r}")
        elif isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if json_doc and isinstance(k, str) and TIMING_KEY.match(k):
                    continue
                sub = f"{where}.{k}"
                if k not in y:
                    out.append(f"{sub}: only in A")
                elif k not in x:
                    out.append(f"{sub}: only in B")
                else:
                    self.values(x[k], y[k], sub, out, json_doc)
        elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            if len(x) != len(y):
                out.append(f"{where}: length {len(x)} != {len(y)}")
                return
            for i, (u, v) in enumerate(zip(x, y)):
                self.values(u, v, f"{where}[{i}]", out, json_doc)
        elif isinstance(x, bytes) and isinstance(y, bytes):
            if x != y:
                out.append(f"{where}: {len(x)} bytes != {len(y)} bytes (content differs)")
        else:
            if type(x) is not type(y) or x != y:
                out.append(f"{where}: {_short(repr(x))} != {_short(repr(y))}")

    def arrays(self, x: np.ndarray, y: np.ndarray):
        """Boolean mask of unequal elements of two same-shape arrays."""
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            xf, yf = x.astype(np.float64), y.astype(np.float64)
            with np.errstate(invalid="ignore"):
                close = np.abs(xf - yf) <= self.atol + self.rtol * np.abs(yf)
            close |= np.isnan(xf) & np.isnan(yf)
            close |= np.isinf(xf) & (xf == yf)
            return ~close
        return x != y

    # -- file types --------------------------------------------------------------
    def json_file(self, pa_: Path, pb: Path) -> list[str]:
        x, y = _load_json(pa_), _load_json(pb)
        out: list[str] = []
        self.values(x, y, "$", out, json_doc=True)
        return out

    def csv_file(self, pa_: Path, pb: Path) -> list[str]:
        ra, rb = _load_csv(pa_), _load_csv(pb)
        if not ra or not rb:
            return [] if ra == rb else ["one file is empty"]
        if ra[0] != rb[0]:
            return [f"header {ra[0]} != {rb[0]}"]
        out = []
        if len(ra) != len(rb):
            out.append(f"{len(ra) - 1} rows != {len(rb) - 1} rows")
        header = ra[0]
        for i, (row_a, row_b) in enumerate(zip(ra[1:], rb[1:]), start=2):
            if len(row_a) != len(row_b):
                out.append(f"line {i}: {len(row_a)} cells != {len(row_b)} cells")
                continue
            for j, (u, v) in enumerate(zip(row_a, row_b)):
                if u == v or self.strings_equal(u, v):
                    continue
                fu, fv = _as_float(u), _as_float(v)
                if fu is not None and fv is not None and self.floats_equal(fu, fv):
                    continue
                col = header[j] if j < len(header) else f"#{j}"
                out.append(f"line {i} ({row_a[0] if row_a else ''}), column {col!r}: {u!r} != {v!r}")
        return out

    def npz_file(self, pa_: Path, pb: Path) -> list[str]:
        with np.load(pa_, allow_pickle=False) as za, np.load(pb, allow_pickle=False) as zb:
            out = [f"array {k!r}: only in A" for k in sorted(set(za.files) - set(zb.files))]
            out += [f"array {k!r}: only in B" for k in sorted(set(zb.files) - set(za.files))]
            for k in sorted(set(za.files) & set(zb.files)):
                x, y = za[k], zb[k]
                if x.shape != y.shape or x.dtype != y.dtype:
                    out.append(f"array {k!r}: {x.dtype}{x.shape} != {y.dtype}{y.shape}")
                    continue
                bad = self.arrays(x, y)
                if bad.any():
                    out.append(f"array {k!r}: {int(bad.sum())} of {bad.size} values differ" + _max_diff(x[bad], y[bad]))
            return out

    def parquet_file(self, pa_: Path, pb: Path) -> list[str]:
        import pyarrow.parquet as pq

        ta, tb = pq.read_table(pa_), pq.read_table(pb)
        fields_a = [(f.name, str(f.type)) for f in ta.schema]
        fields_b = [(f.name, str(f.type)) for f in tb.schema]
        if fields_a != fields_b:
            return [f"schema {fields_a} != {fields_b}"]
        out = []
        meta_a = {k: v for k, v in (ta.schema.metadata or {}).items() if k not in IGNORED_METADATA}
        meta_b = {k: v for k, v in (tb.schema.metadata or {}).items() if k not in IGNORED_METADATA}
        if meta_a != meta_b:
            out.append(f"schema metadata {meta_a} != {meta_b}")
        if ta.num_rows != tb.num_rows:
            return out + [f"{ta.num_rows} rows != {tb.num_rows} rows"]
        keys = [c for c in ("video_id", "frame") if c in ta.column_names]
        key_values = [ta.column(c).to_pylist() for c in keys]

        def row_label(i: int) -> str:
            if not keys:
                return f"row {i}"
            return f"row {i} (" + ", ".join(f"{c}={v[i]}" for c, v in zip(keys, key_values)) + ")"

        for name in ta.column_names:
            msg = self._column(ta.column(name).combine_chunks(), tb.column(name).combine_chunks())
            if msg is not None:
                n_bad, first, detail = msg
                out.append(
                    f"column {name!r}: {n_bad} of {ta.num_rows} rows differ{detail}; first at {row_label(first)}"
                )
        return out

    def _column(self, ca, cb):
        """None when equal, else (rows differing, first differing row, detail)."""
        import pyarrow as pa

        n = len(ca)
        bad = np.zeros(n, dtype=bool)
        valid_a = np.asarray(ca.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        valid_b = np.asarray(cb.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        bad |= valid_a != valid_b
        both = valid_a & valid_b
        detail = ""
        t = ca.type
        if pa.types.is_floating(t) or pa.types.is_integer(t):
            x = ca.fill_null(0).to_numpy(zero_copy_only=False)
            y = cb.fill_null(0).to_numpy(zero_copy_only=False)
            diff = self.arrays(x, y) & both
            if diff.any() and pa.types.is_floating(t):
                detail = _max_diff(x[diff], y[diff])
            bad |= diff
        elif (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
            pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)
        ):
            import pyarrow.compute as pc

            len_a = pc.list_value_length(ca).fill_null(0).to_numpy(zero_copy_only=False)
            len_b = pc.list_value_length(cb).fill_null(0).to_numpy(zero_copy_only=False)
            len_a = np.where(both, len_a, 0)
            len_b = np.where(both, len_b, 0)
            bad |= len_a != len_b
            same = both & (len_a == len_b)
            xa = _list_values(ca, same, len_a)
            xb = _list_values(cb, same, len_b)
            elem_bad = self.arrays(xa, xb)
            if elem_bad.any():
                rows = np.repeat(np.flatnonzero(same), len_a[same])
                bad[np.unique(rows[elem_bad])] = True
                detail = f" ({int(elem_bad.sum())} of {elem_bad.size} values" + _max_diff(
                    xa[elem_bad], xb[elem_bad]
                ).replace(" (", ", ", 1)
        else:
            la, lb = ca.to_pylist(), cb.to_pylist()
            for i in np.flatnonzero(both):
                tmp: list[str] = []
                self.values(la[i], lb[i], "", tmp)
                if tmp:
                    bad[i] = True
                    if not detail:
                        detail = f" (e.g. {tmp[0].lstrip(': ')})"
        if not bad.any():
            return None
        return int(bad.sum()), int(np.flatnonzero(bad)[0]), detail


def _list_values(col, rows_mask: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated list values of the rows in ``rows_mask`` (nulls and slicing handled)."""
    import pyarrow as pa

    idx = pa.array(np.flatnonzero(rows_mask), type=pa.int64())
    taken = col.take(idx)
    if len(taken) == 0:
        return np.zeros(0)
    values = taken.flatten().to_numpy(zero_copy_only=False)
    expected = int(lengths[rows_mask].sum())
    if len(values) != expected:  # defensive: never silently misalign
        raise ValueError(f"list column flattened to {len(values)} values, expected {expected}")
    return values


def _max_diff(x: np.ndarray, y: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        d = np.abs(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64))
    d = d[np.isfinite(d)]
    return f" (max |diff| {d.max():.3g})" if d.size else " (NaN/inf differ)"


def _short(s: str, n: int = 120) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _as_float(s: str):
    try:
        return float(s)
    except ValueError:
        return None


def _load_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _load_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


_READERS = {
    ".parquet": _Comparer.parquet_file,
    ".csv": _Comparer.csv_file,
    ".json": _Comparer.json_file,
    ".npz": _Comparer.npz_file,
}


def compare_dirs(a, b, atol: float = 1e-6, rtol: float = 0.0) -> list[str]:
    """Human-readable differences between the results directories ``a`` and ``b``.

    Empty when they are equal in the sense of the module docstring.  ``atol=0`` (and
    ``rtol=0``) demands bit-identical floats.  Raises ``FileNotFoundError`` naming a
    directory that does not exist.
    """
    a, b = Path(a), Path(b)
    for d in (a, b):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: not a directory (expected a results directory)")
    cmp = _Comparer(a, b, atol, rtol)
    files_a, files_b = set(list_files(a)), set(list_files(b))
    out = [f"{rel}: only in A ({a})" for rel in sorted(files_a - files_b)]
    out += [f"{rel}: only in B ({b})" for rel in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        reader = _READERS.get(Path(rel).suffix)
        if reader is None:
            continue
        try:
            diffs = reader(cmp, a / rel, b / rel)
        except Exception as e:  # unreadable table: report it, keep comparing the rest
            diffs = [f"cannot compare: {type(e).__name__}: {e}"]
        shown = diffs[:MAX_DETAILS]
        out += [f"{rel}: {d}" for d in shown]
        if len(diffs) > len(shown):
            out.append(f"{rel}: ... and {len(diffs) - len(shown)} more difference(s)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/compare.py",
        description="Compare the tables (Parquet, CSV, JSON, NPZ) of two results directories; exit 1 when they differ.",
    )
    p.add_argument("a", help="first results directory (e.g. results/demo of a local run)")
    p.add_argument("b", help="second results directory")
    p.add_argument("--atol", type=float, default=1e-6, help="absolute float tolerance (default 1e-6; 0: exact)")
    p.add_argument("--rtol", type=float, default=0.0, help="relative float tolerance (default 0)")
    args = p.parse_args(argv)
    try:
        diffs = compare_dirs(args.a, args.b, atol=args.atol, rtol=args.rtol)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = sum(1 for rel in list_files(args.a) if rel.endswith(CONTENT_SUFFIXES))
    for d in diffs:
        print(d)
    if diffs:
        print(
            f"DIFFERENT: {len(diffs)} difference(s) between {args.a} and {args.b} "
            f"(atol={args.atol:g}, rtol={args.rtol:g})"
        )
        return 1
    print(f"EQUAL: {n} tables compared (atol={args.atol:g}, rtol={args.rtol:g}), all files present on both sides")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
