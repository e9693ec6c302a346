"""``emoflow predict``: emotions of new videos (or face images) from a trained run's bundle.

    emoflow predict clip1.mp4 clip2.mp4 --bundle results/paired_av --out predictions/
    emoflow predict --manifest new.csv --bundle results/paired_av/bundle --out out/ --json
    emoflow predict --watch recordings/ --bundle results/paired_av --out live/ --no-timeline

All inputs are scored in one process that loads each model once (``--isolated``: each
stage in its own process, as a workflow job).

Writes to ``--out``:

``predictions.csv``   one row per input: ``video_id, path, label_pred, p_<class>...,
                      modalities_used, note`` (``modalities_used``: the modalities whose
                      experiments had their feature, ``;``-separated; ``note``: what the stages
                      skipped, e.g. no face); ``predictions.json`` with ``--json``
``experiments.parquet`` every experiment's probabilities per input (long form)
``timeline.parquet``  per-second predictions over sliding windows (:mod:`.timeline`)
``timeline/<video_id>.png`` the timeline plot of each video
``skips.csv``         every skip the stages recorded

An input with no usable face and no usable audio gets an empty ``label_pred`` and NaN
probabilities; one with only one of them is predicted from that modality's experiments
(the fusion renormalises its weights; a stacking fusion reads the absent experiments'
training priors).  Images become one-second still videos (no audio: face modality only) and
get no timeline.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emoflow import logs
from emoflow.classify.speaker_norm import MIN_VIDEOS
from emoflow.errors import EmoflowError, MediaError
from emoflow.predict import pipeline, timeline
from emoflow.predict.apply import score
from emoflow.predict.bundle import Bundle
from emoflow.warm import ModelCache

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
#: what ``--watch`` picks up besides images (other names, e.g. a recorder's ``*.part``, wait)
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts"}
_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Result:
    videos: pd.DataFrame  # one row per input (see module doc)
    experiments: pd.DataFrame  # long form: video_id, experiment, present, p_<class>
    timeline: pd.DataFrame  # timeline.schema rows
    skips: pd.DataFrame


def video_id_of(path: str | os.PathLike, taken: set[str]) -> str:
    """A manifest-style id from a file name (letters, digits, '.', '_', '-'), unique among ``taken``."""
    stem = _ID_BAD.sub("_", Path(path).stem).strip("._-") or "video"
    if not stem[0].isalnum():
        stem = "v" + stem
    vid, i = stem[:120], 2
    while vid in taken:
        vid, i = f"{stem[:112]}-{i}", i + 1
    taken.add(vid)
    return vid


def gather(paths: list[str], manifest: str | None = None, taken: set[str] | None = None) -> pd.DataFrame:
    """Inputs as rows (video_id, path absolute, kind video|image[, label, split]); a missing file is an error.
    ``taken``: ids already given (kept unique across calls, e.g. by ``--watch``; updated)."""
    if manifest:
        from emoflow.dataset.manifest import validate_manifest

        df = validate_manifest(manifest, classes=None, require_labels=False, check_files=True)
        keep = [c for c in ("video_id", "path", "label", "split", "speaker") if c in df]
        df = df[keep].copy()
    else:
        taken = set() if taken is None else taken
        rows = []
        for p in paths:
            if not Path(p).is_file():
                raise EmoflowError(f"{p}: no such file")
            rows.append({"video_id": video_id_of(p, taken), "path": str(Path(p).resolve())})
        df = pd.DataFrame(rows, columns=["video_id", "path"])
    if df.empty:
        raise EmoflowError("nothing to predict: give video or image files, or --manifest")
    df["kind"] = ["image" if Path(p).suffix.lower() in IMAGE_SUFFIXES else "video" for p in df["path"]]
    return df.reset_index(drop=True)


def image_to_video(src: str, dst: Path, seconds: float = 1.0, fps: int = 25, timeout: float = 60.0) -> None:
    """A still video of one image (even frame size, yuv420p), for the face stages."""
    from emoflow.media.ffmpeg import Process, command, last_line

    cmd = command(
        "-loop",
        "1",
        "-i",
        f"file:{src}",
        "-t",
        f"{seconds}",
        "-r",
        str(fps),
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        f"file:{dst}",
    )
    with Process(cmd, timeout) as proc:
        code, err = proc.finish()
    if code != 0 or proc.timed_out:
        raise MediaError(f"{src}: not a readable image ({last_line(err, dst) or 'timed out'})")


def _duration(path: str) -> float | None:
    from emoflow.media.ffmpeg import ffprobe

    try:
        info = ffprobe(path, timeout=30)
    except MediaError:
        return None  # the probe stage records why
    try:
        return float(info.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        return None


def gather_enrolment(source: str, speaker: str | None = None) -> pd.DataFrame:
    """Enrolment clips: a manifest (CSV/TSV with ``video_id, path, speaker``), or a folder
    of one speaker's video/image files (``speaker`` names them)."""
    src = Path(source)
    if src.is_dir():
        files = sorted(str(p) for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise EmoflowError(f"{source}: no clips to enrol")
        if not speaker:
            raise EmoflowError(f"{source}: enrolling a folder needs --speaker (whose clips they are)")
        rows = gather(files)
        rows["speaker"] = speaker
        return rows
    if not src.is_file():
        raise EmoflowError(f"{source}: no such folder or manifest to enrol")
    rows = gather([], str(src))
    if "speaker" not in rows or (rows["speaker"].fillna("").astype(str) == "").any():
        if not speaker:
            raise EmoflowError(f"{source}: every enrolment clip needs a speaker (a speaker column, or --speaker)")
        rows["speaker"] = rows.get("speaker", pd.Series([""] * len(rows))).fillna("").replace("", speaker)
    return rows


def plan(
    inputs: pd.DataFrame, work: Path, with_timeline: bool, window: float, log
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the stages run on: inputs + timeline windows; windows table)."""
    rows, wins = [], []
    (work / "inputs").mkdir(parents=True, exist_ok=True)
    for r in inputs.itertuples(index=False):
        path = r.path
        if r.kind == "image":
            path = str(work / "inputs" / f"{r.video_id}.mp4")
            try:
                image_to_video(r.path, Path(path))
            except MediaError as exc:
                log.warning("%s", exc)
                path = r.path  # the probe stage records the failure for this input
        rows.append({"video_id": r.video_id, "path": path})
        if not with_timeline or r.kind == "image":
            continue
        for k, start, end in timeline.windows(_duration(path) or 0.0, window):
            wid = f"{r.video_id}.t{k:05d}"
            dst = work / "windows" / f"{wid}.mp4"
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                timeline.cut(path, dst, start, end)
            except MediaError as exc:
                log.warning("%s", exc)
                continue
            rows.append({"video_id": wid, "path": str(dst)})
            wins.append({"window_id": wid, "video_id": r.video_id, "second": k, "start": start, "end": end})
    ids = [r["video_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise EmoflowError("an input's id collides with a timeline window id (<id>.tNNNNN); rename the input")
    return pd.DataFrame(rows), pd.DataFrame(wins, columns=["window_id", "video_id", "second", "start", "end"])


ENROL_PREFIX = "enrol."


def enrolment_rows(enrol: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """The enrolment clips as extra stage rows (ids prefixed ``enrol.``): every one needs a
    speaker, and each enrolled speaker's statistics then come from these clips alone."""
    if "speaker" not in enrol or (enrol["speaker"].fillna("").astype(str) == "").any():
        raise EmoflowError("enrolment clips need a speaker: give --speaker, or a manifest with a speaker column")
    out = enrol[["video_id", "path", "kind", "speaker"]].copy()
    out["video_id"] = ENROL_PREFIX + out["video_id"].astype(str)
    clash = set(out["video_id"]) & set(inputs["video_id"])
    if clash:
        raise EmoflowError(f"input ids collide with enrolment ids: {sorted(clash)[:5]}")
    return out.reset_index(drop=True)


def predict(
    bundle: Bundle,
    inputs: pd.DataFrame,
    work: Path,
    threads: int | None = None,
    with_timeline: bool = True,
    window: float = 2.0,
    chunk: int | None = None,
    log=None,
    modalities: set[str] | None = None,
    enrol: pd.DataFrame | None = None,
    models: ModelCache | None = None,
) -> Result:
    """Run the stages, the classifiers and the fusion on ``inputs`` (see :func:`gather`).

    ``models``: run the stages warm, in this process, keeping their models there for later
    calls (:mod:`emoflow.predict.pipeline`); None: each stage in its own subprocess per chunk.
    ``chunk``: inputs per stage call (default 16 warm, 64 isolated: models load per chunk).
    The stages run chunk by chunk; the classifiers and the fusion then run once over all
    inputs, so a speaker-normalised experiment sees every clip of a speaker (``speaker``
    column; a timeline window belongs to its video's speaker; an input without one is
    normalised with the run's population statistics, and its note says so).

    ``enrol`` (rows as :func:`gather` makes them, with a ``speaker`` column): unlabelled
    clips of some speakers, given once.  An enrolled speaker's statistics then come from
    its enrolment clips *only*, so each of its inputs is scored independently of the
    others (as when clips of a known person arrive one at a time); speakers without
    enrolment are normalised as above."""
    log = log or logs.setup("emoflow.predict")
    classes = bundle.classes
    enrolled: dict[str, int] = {}
    if enrol is not None and len(enrol):
        enrol = enrolment_rows(enrol, inputs)
        enrolled = enrol["speaker"].astype(str).value_counts().to_dict()
        for spk, n in sorted(enrolled.items()):
            if n < MIN_VIDEOS:
                log.warning(
                    "enrolment of speaker %s has %d clips (fewer than %d): population statistics are used",
                    spk,
                    n,
                    MIN_VIDEOS,
                )
        log.info("enrolment: %d clips of %d speakers", len(enrol), len(enrolled))
    rows, wins = plan(inputs, work, with_timeline, window, log)
    if enrolled:
        erows, _ = plan(enrol, work, False, window, log)
        rows = pd.concat([rows, erows], ignore_index=True)
    chunk = chunk or (16 if models is not None else 64)
    chunks = [rows.iloc[i : i + chunk] for i in range(0, len(rows), chunk)]
    tables, skips = {}, []
    # one bar over the clips (and timeline windows), advanced as each chunk's stages finish;
    # shown when there is more than one chunk (a lone clip has nothing to show)
    bar = logs.progress(None, "predict", total=len(rows), unit="clip", disable=len(chunks) < 2)
    try:
        for i, part in enumerate(chunks):
            cw = work / f"chunk{i:04d}"
            done = pipeline.run_chunk(bundle, part, cw, threads, on_stage=bar.set_postfix_str, models=models)
            for name, table in done.items():
                tables.setdefault(name, []).append(table)
            skips.append(pipeline.skipped(cw))
            bar.update(len(part))
        bar.set_postfix_str("classifiers, fusion")
        ids = rows["video_id"].tolist()
        input_ids = set(inputs["video_id"])
        everyone = inputs if not enrolled else pd.concat([inputs, enrol], ignore_index=True)
        speakers = speakers_of(everyone, wins, ids)
        # the clips whose features make a speaker's statistics: its enrolment where it has
        # one, else its inputs themselves
        reference = [
            (v.startswith(ENROL_PREFIX) and v not in input_ids) if spk in enrolled else v in input_ids
            for v, spk in zip(ids, speakers)
        ]
        s = score(bundle, tables, ids, modalities, speakers, reference)
    finally:
        bar.close()
    used = s.modalities_used(bundle)
    fused = dict(zip(ids, s.fused))
    mods = dict(zip(ids, used))
    present_any = {vid: any(p[j] for p in s.present.values()) for j, vid in enumerate(ids)}
    population = {vid: bool(s.population_norm[j]) for j, vid in enumerate(ids)}
    exp_rows = [
        {
            "video_id": vid,
            "experiment": name,
            "present": bool(s.present[name][j]),
            **{f"p_{c}": float(probs[j, k]) for k, c in enumerate(classes)},
        }
        for j, vid in enumerate(ids)
        if vid in input_ids
        for name, probs in s.experiments.items()
    ]
    skip_df = (
        pd.concat(skips, ignore_index=True) if skips else pd.DataFrame(columns=["video_id", "stage", "kind", "reason"])
    )

    def row(vid):
        ok = present_any[vid]
        p = fused[vid] if ok else np.full(len(classes), np.nan)
        return {
            "label_pred": classes[int(np.argmax(p))] if ok else "",
            **{f"p_{c}": float(p[k]) for k, c in enumerate(classes)},
            "modalities_used": ";".join(mods[vid]),
        }

    notes = (
        skip_df.groupby("video_id")
        .apply(lambda g: "; ".join(f"{a}: {b}" for a, b in zip(g["stage"], g["reason"])), include_groups=False)
        .to_dict()
        if len(skip_df)
        else {}
    )
    spk_of = dict(zip(ids, speakers))
    for vid in inputs["video_id"]:
        text = ""
        if population[vid]:
            text = f"speaker-normalised experiments used the run's population statistics (no speaker with {MIN_VIDEOS}+ clips given)"
        elif spk_of.get(vid) in enrolled and any(e.get("normalize") == "speaker" for e in bundle.experiments.values()):
            text = f"speaker-normalised with the enrolment of speaker {spk_of[vid]} ({enrolled[spk_of[vid]]} clips)"
        if text:
            notes[vid] = f"{notes[vid]}; {text}" if notes.get(vid) else text
    videos = pd.DataFrame(
        [
            {"video_id": v, "path": p, **row(v), "note": notes.get(v, "")}
            for v, p in zip(inputs["video_id"], inputs["path"])
        ]
    )
    for extra in ("label", "split"):
        if extra in inputs:
            videos[extra] = inputs[extra].to_numpy()
    tl = pd.DataFrame(
        [
            {
                "video_id": w.video_id,
                "second": int(w.second),
                "start": float(w.start),
                "end": float(w.end),
                **row(w.window_id),
            }
            for w in wins.itertuples(index=False)
        ],
        columns=[f.name for f in timeline.schema(classes)],
    )
    return Result(videos, pd.DataFrame(exp_rows), tl, skip_df)


def speakers_of(inputs: pd.DataFrame, wins: pd.DataFrame, ids: list[str]) -> list[str]:
    """The speaker of each of ``ids`` (inputs and timeline windows): the ``speaker`` column
    where given, else the video itself (a group of one: population statistics)."""
    given = inputs["speaker"].fillna("").astype(str) if "speaker" in inputs else pd.Series([""] * len(inputs))
    spk = {v: (g if g else f"video:{v}") for v, g in zip(inputs["video_id"], given)}
    parent = dict(zip(wins["window_id"], wins["video_id"]))
    return [spk[parent.get(v, v)] for v in ids]


def write(
    result: Result, out: Path, classes: list[str], as_json: bool = False, plots: bool | set[str] = True
) -> list[Path]:
    """Write the outputs (see module doc) atomically; returns the paths written.  ``plots``:
    the timeline plots of every video, none, or of these video ids."""
    import pyarrow as pa

    from emoflow.storage import write_table, write_text

    out.mkdir(parents=True, exist_ok=True)
    written = []
    write_text(out / "predictions.csv", result.videos.to_csv(index=False))
    written.append(out / "predictions.csv")
    if as_json:
        recs = json.loads(result.videos.to_json(orient="records"))
        write_text(out / "predictions.json", json.dumps(recs, indent=1))
        written.append(out / "predictions.json")
    if len(result.experiments):
        write_table(pa.Table.from_pandas(result.experiments, preserve_index=False), out / "experiments.parquet")
        written.append(out / "experiments.parquet")
    write_table(
        pa.Table.from_pandas(result.timeline, schema=timeline.schema(classes), preserve_index=False),
        out / "timeline.parquet",
    )
    written.append(out / "timeline.parquet")
    write_text(out / "skips.csv", result.skips.to_csv(index=False))
    written.append(out / "skips.csv")
    if plots:
        for vid, rows in result.timeline.groupby("video_id"):
            if plots is not True and vid not in plots:
                continue
            p = out / "timeline" / f"{vid}.png"
            timeline.plot(rows, classes, p, title=f"{vid}: per-second emotion (window-level fusion)")
            written.append(p)
    return written


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="emoflow predict",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("inputs", nargs="*", help="video or face-image files")
    ap.add_argument(
        "--watch",
        metavar="DIR",
        help="score the files that appear in DIR, as they appear (a recording session), "
        "until interrupted: predictions.csv grows by a row per file; hidden and temporary names (.name, *.tmp, "
        "*.part) are ignored until renamed to a video or image name, and a file is read once its size settles",
    )
    ap.add_argument("--poll", type=float, default=1.0, help="--watch: seconds between looks at DIR (default 1)")
    ap.add_argument(
        "--stop-after", type=int, metavar="N", help="--watch: stop after N files (default: run until interrupted)"
    )
    ap.add_argument(
        "--isolated",
        action="store_true",
        help="run each stage in its own process per chunk, as a workflow "
        "job (slower: models load every chunk); default: one process, each model loaded once",
    )
    ap.add_argument(
        "--bundle", required=True, help="a run's bundle folder, or the run's results folder holding bundle/"
    )
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument(
        "--manifest",
        help="CSV/TSV with video_id,path (instead of files; label, split and speaker columns are "
        "kept: speaker-normalised experiments normalise each speaker's clips together)",
    )
    ap.add_argument(
        "--speaker", help="the inputs given as files are all this one speaker's (for speaker-normalised experiments)"
    )
    ap.add_argument(
        "--enrol",
        metavar="DIR_OR_MANIFEST",
        help="unlabelled clips of known speakers, given once: a folder of one speaker's clips (with --speaker) or a "
        "manifest with video_id,path,speaker. An enrolled speaker's inputs are then normalised with its "
        "enrolment's statistics, each clip on its own (speaker-normalised experiments)",
    )
    ap.add_argument("--json", action="store_true", help="also write predictions.json")
    ap.add_argument("--no-timeline", action="store_true", help="skip the per-second timeline (about halves the time)")
    ap.add_argument("--window", type=float, default=2.0, help="timeline window length in seconds (default 2)")
    ap.add_argument(
        "--threads", type=int, help="threads per stage (default: the run's; other counts change floats slightly)"
    )
    ap.add_argument(
        "--chunk", type=int, help="inputs per stage run (default 16; 64 with --isolated, where models load per chunk)"
    )
    ap.add_argument("--classes", help="comma-separated class list the bundle must predict (refuse otherwise)")
    ap.add_argument("--work", help="keep the intermediate tables in this folder (default: a temporary folder, removed)")
    ap.add_argument(
        "--modalities",
        help="comma-separated modalities to predict from (e.g. face for footage whose sound "
        "is not speech); the fusion renormalises over their experiments (default: all the bundle has)",
    )
    ap.add_argument(
        "--detect",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a face-finding setting of the bundle for inputs unlike the training videos "
        f"(one of {', '.join(sorted(DETECTION_KEYS))}; e.g. faces.min_face=0.03 frames.max_side=1280 "
        "for small faces in HD crowd footage): it changes where faces are found, not how "
        "features are computed from the aligned crops; predictions then no longer reproduce the run's",
    )
    return ap


#: Settings that only decide where faces are found (the features come from aligned crops of a
#: fixed size either way): stored frame size, smallest face, detection resolution, keyframe step.
DETECTION_KEYS = {
    "frames.max_side": (int, True),
    "faces.min_face": (float, False),
    "faces.det_max_side": (int, True),
    "faces.detect_every": (int, False),
}


def apply_detection_overrides(bundle: Bundle, items: list[str], log) -> None:
    """``--detect KEY=VALUE`` onto the bundle's stage config slices (in memory)."""
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in DETECTION_KEYS:
            raise EmoflowError(
                f"--detect {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(DETECTION_KEYS))}"
            )
        kind, nullable = DETECTION_KEYS[key]
        if nullable and raw.lower() in ("null", "none"):
            value = None
        else:
            try:
                value = kind(raw)
            except ValueError:
                raise EmoflowError(
                    f"--detect {item!r}: {raw!r} is not a{'n integer' if kind is int else ' number'}"
                ) from None
            if value <= 0:
                raise EmoflowError(f"--detect {item!r}: must be positive")
        stage, name = key.split(".")
        log.info("--detect: %s = %r (the bundle says %r)", key, value, bundle.stages[stage].get(name))
        bundle.stages[stage][name] = value


def ready_files(folder: Path, seen: set[Path], stamps: dict[Path, tuple]) -> list[Path]:
    """The files of ``folder`` ``--watch`` scores now: a video or image name (not hidden, not
    a temporary name), not scored yet, non-empty, and of the same size and time as at the last
    look (``stamps``, updated), so a file still being written waits."""
    ready = []
    for p in sorted(folder.iterdir()):
        if (
            p in seen
            or p.name.startswith(".")
            or p.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            or not p.is_file()
        ):
            continue
        st = p.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        if st.st_size and stamps.get(p) == stamp:
            ready.append(p)
        stamps[p] = stamp
    return ready


def watch(score, classes: list[str], folder: Path, out: Path, args, log) -> int:
    """``--watch``: score each file as it appears in ``folder`` (``score(inputs, work)``:
    :func:`predict` with the session's bundle and settings); returns the number scored."""
    if not folder.is_dir():
        raise EmoflowError(f"--watch {folder}: no such folder")
    taken: set[str] = set()
    seen: set[Path] = set()
    stamps: dict[Path, tuple] = {}
    done: list[Result] = []
    log.info(
        "watching %s (every %.1f s; Ctrl-C stops); predictions go to %s", folder, args.poll, out / "predictions.csv"
    )
    try:
        while not (args.stop_after and len(seen) >= args.stop_after):
            new = ready_files(folder, seen, stamps)[: (args.stop_after - len(seen)) if args.stop_after else None]
            if not new:
                time.sleep(args.poll)
                continue
            seen.update(new)
            inputs = gather([str(p) for p in new], taken=taken)
            if args.speaker:
                inputs["speaker"] = args.speaker
            work = Path(tempfile.mkdtemp(prefix="emoflow-watch-"))
            try:
                res = score(inputs, work)
            except EmoflowError as exc:  # one bad file never stops the session
                log.error("%s: %s", ", ".join(p.name for p in new), exc)
                continue
            finally:
                shutil.rmtree(work, ignore_errors=True)
            done.append(res)
            merged = Result(
                *(
                    pd.concat([getattr(r, f) for r in done], ignore_index=True)
                    for f in ("videos", "experiments", "timeline", "skips")
                )
            )
            write(merged, out, classes, args.json, plots=set(res.videos["video_id"]))
            for r in res.videos.itertuples(index=False):
                log.info("%s: %s (%s)", Path(r.path).name, r.label_pred or "no prediction", r.modalities_used or r.note)
    except KeyboardInterrupt:
        log.info("stopped")
    return len(seen)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = logs.setup("emoflow.predict")
    t0 = time.time()
    try:
        if args.watch and (args.inputs or args.manifest):
            raise EmoflowError("--watch scores the files of a folder: give no input files or --manifest with it")
        bundle = Bundle.load(args.bundle, classes=args.classes.split(",") if args.classes else None)
        apply_detection_overrides(bundle, args.detect, log)
        modalities = None
        if args.modalities:
            modalities = {m.strip() for m in args.modalities.split(",") if m.strip()}
            unknown = modalities - set(bundle.modalities())
            if unknown or not modalities:
                raise EmoflowError(
                    f"--modalities {args.modalities!r}: this bundle's modalities are {', '.join(bundle.modalities())}"
                )
        if args.speaker and args.manifest:
            raise EmoflowError("--speaker is for inputs given as files; a manifest has a speaker column")
        enrol = gather_enrolment(args.enrol, args.speaker) if args.enrol else None
        score = functools.partial(
            predict,
            bundle,
            threads=args.threads,
            with_timeline=not args.no_timeline,
            window=args.window,
            chunk=args.chunk,
            log=log,
            modalities=modalities,
            enrol=enrol,
            models=None if args.isolated else ModelCache(),  # warm: models kept across calls
        )
        if args.watch:
            n = watch(score, bundle.classes, Path(args.watch), Path(args.out), args, log)
            log.info("%d files scored in %.1f s", n, time.time() - t0)
            return 0
        inputs = gather(args.inputs, args.manifest)
        if args.speaker:
            inputs["speaker"] = args.speaker
        work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="emoflow-predict-"))
        try:
            result = score(inputs, work)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
        write(result, Path(args.out), bundle.classes, args.json)
    except EmoflowError as exc:
        print(f"emoflow predict: error: {exc}", file=sys.stderr)
        return 2
    dt = time.time() - t0
    log.info(
        "%d inputs in %.1f s (%.2f s per input); %s",
        len(inputs),
        dt,
        dt / len(inputs),
        Path(args.out) / "predictions.csv",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
