"""``emoflow similar --run RESULTS QUERY [--k 10]``: the faces of a run closest in
expression to a face image or a video.

The query goes through the run's own probe, frames and faces stages (their settings are in
``similarity/index.json``; an image becomes a one-second still video, as ``emoflow
predict`` does), and its main-face crops are embedded as the index was
(:class:`emoflow.similarity.index.Embedding`).  An image in which no face is found is taken
as a tightly framed face (a FER2013-style crop) and embedded whole.  A video's query vector
is the normalised mean of its frames' embeddings.

Neighbours are ranked by squared Euclidean distance (0-4 between unit vectors), at most
``--per-video`` of them from one video (default 1: the closest frame of each video).  They
are printed (rank, video id, time, distance) and drawn on a contact sheet PNG: the query
beside its neighbours, each with its video id, time and distance.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from emoflow.errors import EmoflowError
from emoflow.similarity.index import Embedding, Index, decode_colour, grey_of

SHARD = "s000"
SRC = str(Path(__file__).resolve().parents[2])


def _run_stages(media: Path, stages: dict, work: Path, threads: int) -> Path:
    """The run's shard / probe / frames / faces stages on one file; returns its crops table."""
    from emoflow.workflow.layout import Layout
    from emoflow.workflow.stages import chunk_commands

    w, L = work, Layout(str(work))
    manifest = w / "manifest.csv"
    pd.DataFrame([{"video_id": "query", "path": str(media)}]).to_csv(manifest, index=False)
    cfg = lambda key: json.dumps({key: stages[key]}, sort_keys=True)  # noqa: E731
    cmds = [
        argv
        for _, argv in chunk_commands(L, SHARD, str(manifest), cfg, lambda _: threads, ("probe", "frames", "faces"))
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for argv in cmds:
        log = w / "logs" / f"{argv[0]}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, "-m", *argv], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=w)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-6:])
            raise EmoflowError(f"{argv[0]} failed on the query (exit {proc.returncode}); log {log}:\n{tail}")
    return Path(L.crops(SHARD))


def query_faces(path: str, stages: dict, work: Path, threads: int = 1):
    """(colour crops (n, c, c, 3) or None, grey images, times, how) of the query's main face."""
    from emoflow.predict.cli import IMAGE_SUFFIXES, image_to_video
    from emoflow.storage import read_table

    src = Path(path).resolve()
    if not src.is_file():
        raise EmoflowError(f"{path}: no such file")
    if not stages:
        raise EmoflowError(
            "the index records no stage settings (probe, frames, faces): rebuild it with --stages or --configfile"
        )
    is_image = src.suffix.lower() in IMAGE_SUFFIXES
    media = src
    if is_image:
        media = work / "query.mp4"
        image_to_video(str(src), media)
    crops = _run_stages(media, stages, work, threads)
    t = read_table(crops).to_pandas() if crops.is_file() else pd.DataFrame()
    if len(t):
        t = t.sort_values("frame")
        return decode_colour(t["color"].tolist()), grey_of(t["grey"].tolist()), t["time"].to_numpy(), "main-face frames"
    if not is_image:
        raise EmoflowError(f"{path}: no face found in the video (see {work}/skips/faces)")
    from PIL import Image

    with Image.open(src) as im:
        rgb = np.asarray(im.convert("RGB"))
    return rgb[None], None, np.zeros(1), "no face detected: the whole image taken as a tightly framed face"


def nearest(index: Index, q: np.ndarray, k: int = 10, per_video: int = 1, exclude=()) -> pd.DataFrame:
    """The ``k`` index rows closest to ``q`` (squared Euclidean), at most ``per_video`` a video
    (0: no limit), none of the videos in ``exclude``: rank, video_id, frame, time, crops, distance."""
    d = ((index.x.astype(np.float64) - q.astype(np.float64)[None]) ** 2).sum(1)
    order = np.argsort(d, kind="stable")
    picked, seen, skip = [], {}, set(exclude)
    for i in order:
        vid = index.rows["video_id"].iat[i]
        if vid in skip or (per_video and seen.get(vid, 0) >= per_video):
            continue
        seen[vid] = seen.get(vid, 0) + 1
        picked.append(i)
        if len(picked) == k:
            break
    out = index.rows.iloc[picked].copy()
    out.insert(0, "rank", np.arange(1, len(picked) + 1))
    out["distance"] = d[picked]
    return out.reset_index(drop=True)


def neighbour_crops(index: Index, hits: pd.DataFrame) -> list[np.ndarray]:
    """The colour crop of every hit (from the run's crops tables)."""
    import pyarrow.compute as pc

    from emoflow.storage import read_table

    out = {}
    for name, grp in hits.groupby("crops"):
        t = read_table(index.path(name), columns=["video_id", "frame", "color"])
        t = t.filter(pc.is_in(t["video_id"], value_set=pa_array(grp["video_id"].unique())))
        lookup = {
            (v, int(f)): c for v, f, c in zip(t["video_id"].to_pylist(), t["frame"].to_pylist(), t["color"].to_pylist())
        }
        for i, r in grp.iterrows():
            out[i] = decode_colour([lookup[(r["video_id"], int(r["frame"]))]])[0]
    return [out[i] for i in hits.index]


def pa_array(values):
    import pyarrow as pa

    return pa.array(list(values), pa.string())


def contact_sheet(
    query: np.ndarray,
    query_label,
    hits: pd.DataFrame,
    crops: list[np.ndarray],
    path: str | Path,
    tile: int = 144,
    columns: int = 5,
) -> Path:
    """The query (left, framed in blue) beside its neighbours in rank order, each captioned
    with rank, distance, video id and time."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    cap, pad = 44, 8
    cols = max(1, min(columns, len(crops)))
    rows = max(1, -(-len(crops) // cols))
    width = pad + (tile + pad) * (cols + 1) + pad
    height = pad + (tile + cap + pad) * rows
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)

    def put(img, x, y, lines, outline=None):
        im = Image.fromarray(np.asarray(img, np.uint8)).convert("RGB").resize((tile, tile), Image.BICUBIC)
        sheet.paste(im, (x, y))
        if outline:
            draw.rectangle([x - 3, y - 3, x + tile + 2, y + tile + 2], outline=outline, width=3)
        for j, line in enumerate(lines):
            draw.text((x, y + tile + 4 + 12 * j), line[:24], fill="black", font=font)

    lines = [query_label] if isinstance(query_label, str) else list(query_label)
    put(query, pad, pad, ["QUERY", *lines[:2]], outline=(40, 90, 220))
    x0 = pad + tile + 2 * pad
    for n, (img, (_, r)) in enumerate(zip(crops, hits.iterrows())):
        x = x0 + (n % cols) * (tile + pad)
        y = pad + (n // cols) * (tile + cap + pad)
        put(
            img,
            x,
            y,
            [f"#{r['rank']}  d={r['distance']:.3f}", str(r["video_id"]), f"t={r['time']:.2f}s frame {int(r['frame'])}"],
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def similar(
    run: str,
    query: str,
    k: int = 10,
    per_video: int = 1,
    sheet: str | None = None,
    threads: int = 1,
    work: str | None = None,
    exclude=(),
) -> tuple[pd.DataFrame, Path, str]:
    """Search ``run``'s index for ``query``: (neighbours, contact sheet path, how the query was read)."""
    index = Index.load(run)
    emb = Embedding(index.path(index.meta["model"]), threads)
    with tempfile.TemporaryDirectory(prefix="emoflow-similar-", dir=work) as tmp:
        colour, grey, times, how = query_faces(query, index.meta.get("stages") or {}, Path(tmp), threads)
    if grey is None:  # a tight face image: no framing
        from PIL import Image

        size = emb.meta["trunk"]["size"]
        images = np.stack(
            [np.asarray(Image.fromarray(c).convert("L").resize((size, size), Image.BILINEAR)) for c in colour]
        )
        e = emb.images(images)
    else:
        e = emb.crops(colour, grey)
    q = e.mean(0)
    q = q / max(np.linalg.norm(q), 1e-12)
    best = int(np.argmin(((e - q) ** 2).sum(1)))  # the query frame nearest its mean, as its picture
    hits = nearest(index, q, k, per_video, exclude)
    label = [Path(query).name] + ([f"t={times[best]:.2f}s of {len(e)} frames"] if len(e) > 1 else [])
    out = Path(sheet) if sheet else Path(f"{Path(query).stem}.similar.png")
    contact_sheet(colour[best], label, hits, neighbour_crops(index, hits), out)
    return hits, out, how


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="emoflow similar", description=__doc__.split("\n\n")[0].replace("``", ""))
    ap.add_argument("--run", required=True, help="a run's results folder holding similarity/index.parquet")
    ap.add_argument("query", help="a face image or a video")
    ap.add_argument("--k", type=int, default=10, help="neighbours to show (default 10)")
    ap.add_argument(
        "--per-video", type=int, default=1, help="at most this many neighbours from one video (0: no limit; default 1)"
    )
    ap.add_argument(
        "--exclude", action="append", default=[], help="leave out this video id (repeatable; e.g. the query's own)"
    )
    ap.add_argument("--sheet", help="contact sheet PNG to write (default: <query name>.similar.png here)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", help="folder for the query's temporary stage outputs (default: the system's)")
    args = ap.parse_args(argv)
    if args.k < 1:
        raise EmoflowError("--k must be at least 1")
    hits, path, how = similar(
        args.run, args.query, args.k, args.per_video, args.sheet, args.threads, args.work, args.exclude
    )
    print(f"query {args.query}: {how}")
    print(f"{'rank':>4}  {'distance':>8}  {'time':>7}  video_id")
    for _, r in hits.iterrows():
        print(f"{r['rank']:>4}  {r['distance']:8.4f}  {r['time']:6.2f}s  {r['video_id']}")
    print(f"contact sheet: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
