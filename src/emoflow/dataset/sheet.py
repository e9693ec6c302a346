"""Shard sheets (``tables.SHARD_SHEET``): the videos of one shard, as stages read them.
Kept apart from manifest validation so a stage's code closure does not include it."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from emoflow import tables
from emoflow.storage import read_table, write_table


def write_sheet(rows: pd.DataFrame, out: str) -> None:
    table = pa.Table.from_pandas(rows[["video_id", "path"]], preserve_index=False)
    write_table(table, out, tables.SHARD_SHEET)


def read_sheet(path: str) -> pd.DataFrame:
    return read_table(path).to_pandas()
