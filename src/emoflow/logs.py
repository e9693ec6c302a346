"""Logging and progress bars for stage entry points."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


def setup(name: str, verbose: bool = False) -> logging.Logger:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger(name)


def progress(iterable, desc: str, total: int | None = None, unit: str = "video", disable: bool = False):
    """A tqdm progress bar on stderr; sparse updates when stderr is a log file."""
    interactive = sys.stderr.isatty()
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        mininterval=0.5 if interactive else 10.0,
        dynamic_ncols=interactive,
        ascii=not interactive,
        disable=disable,
    )
