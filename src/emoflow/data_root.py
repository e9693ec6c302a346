"""Config paths that name the shared data root (``{data_root}/...``): their one expansion.

Kept tiny and free of imports: fits that read the shared data import it, and every file a
fit imports is part of its cache key (Snakemake's output cache), so it must rarely change.
"""

from __future__ import annotations

#: FER+ annotator votes, the default of every entry that reads them (the config schema's too)
VOTES_DEFAULT = "{data_root}/ferplus/ferplus_votes.parquet"


def data_path(value: str | None, root: str) -> str | None:
    """``value`` with ``{data_root}`` replaced by ``root`` (anything but a string unchanged)."""
    return value.replace("{data_root}", str(root)) if isinstance(value, str) else value
