"""Corpus adapters: a standard corpus's folder, as it is downloaded, to a manifest.

``emoflow manifest CORPUS ROOT -o manifest.csv [options]`` (or ``python -m
emoflow.dataset.corpora``) walks ``ROOT`` and writes a manifest (``video_id, path, label,
split, speaker`` and the corpus's own fields) and, beside it, ``<name>.unmatched.csv``:
every media file that does not fit the corpus's naming (or repeats a recording already
taken), with the reason. Such files are listed, never guessed; files that are not media
(``.csv``, ``.txt``, ``.parquet`` ...) are ignored.

``ravdess``
    ``MM-VC-EE-II-SS-RR-AA.ext`` (any folder depth): modality (01 full AV, 02 video-only,
    03 audio-only), vocal channel (01 speech, 02 song), emotion (01 neutral, 02 calm,
    03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal,
    02 strong; neutral has no strong), statement (01 "Kids are talking by the door",
    02 "Dogs are sitting by the door"), repetition (01, 02), actor (01-24: speaker
    ``actorNN``, odd male, even female). Song has no disgust or surprised.
``cremad``
    ``SSSS_SEN_EMO_LV.ext``: speaker 1001-1091, one of the 12 sentences, emotion (ANG DIS
    FEA HAP NEU SAD), level (LO MD HI, XX unspecified; the corpus also has X). The same
    clip usually comes in several formats (AudioWAV, AudioMP3, VideoFlash, mp4
    conversions): ``media: video`` keeps one video file per clip, ``audio`` one audio
    file; the other formats are listed as alternates. Sex from ``VideoDemographics.csv``
    when it lies under the root.
``folder``
    ``ROOT/<label>/<files>`` or ``ROOT/<split>/<label>/<files>`` (split: train, val,
    test); the folder name is the label; ``speaker_regex`` takes each file's speaker from
    its name (named group ``speaker``, else group 1, else the whole match).

Labels: ``labels: native`` keeps the corpus's own classes (label spaces ``ravdess8`` and
``cremad6`` of config.yaml); ``labels: fer2013`` maps them onto FER2013's 7 classes
(fearful -> fear, surprised -> surprise; RAVDESS calm -> neutral, or ``calm: drop``).
Speaker ids are the corpus's own (``actor01``..``actor24``, ``1001``..``1091``): stable,
and the ids the shipped evaluation protocols name (``emoflow.dataset.splits``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emoflow.errors import EmoflowError

AUDIO_EXT = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus")
VIDEO_EXT = (".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MEDIA_EXT = VIDEO_EXT + AUDIO_EXT  # preference order when one recording has several files
SPLITS = ("train", "val", "test")

RAVDESS_MODALITY = {"01": "av", "02": "video", "03": "audio"}
RAVDESS_CHANNEL = {"01": "speech", "02": "song"}
RAVDESS_EMOTION = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
RAVDESS_INTENSITY = {"01": "normal", "02": "strong"}
RAVDESS_STATEMENT = {"01": "kids", "02": "dogs"}  # Kids are talking / Dogs are sitting by the door
RAVDESS_ACTORS = 24
RAVDESS_SONG_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful")

CREMAD_EMOTION = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
CREMAD_LEVELS = ("LO", "MD", "HI", "XX", "X")
CREMAD_SPEAKERS = range(1001, 1092)

# native class -> FER2013 class (None: dropped); RAVDESS calm is decided by the `calm` option
TO_FER2013 = {"fearful": "fear", "surprised": "surprise"}

_RAVDESS_NAME = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")
_CREMAD_NAME = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

DEFAULTS = {
    "ravdess": {
        "modalities": ["av", "video", "audio"],
        "channels": ["speech", "song"],
        "labels": "native",
        "calm": "neutral",
    },
    "cremad": {"media": "video", "labels": "native"},
    "folder": {"speaker_regex": None},
}


@dataclass
class Scan:
    """What an adapter found: manifest rows (absolute paths), the unmatched files (path,
    reason), and counts of files left out by an option (not listed)."""

    corpus: str
    root: Path
    rows: pd.DataFrame
    unmatched: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    ignored: int = 0  # files that are not media

    def summary(self) -> str:
        lines = [f"{self.corpus}: {len(self.rows)} recordings under {self.root}"]
        if len(self.rows):
            if self.rows["speaker"].ne("").any():
                lines.append(f"  speakers: {self.rows['speaker'].replace('', pd.NA).nunique()}")
            counts = self.rows["label"].value_counts()
            lines.append("  labels: " + ", ".join(f"{k}={int(v)}" for k, v in sorted(counts.items())))
            if self.rows["split"].ne("").any():
                lines.append(
                    "  splits: "
                    + ", ".join(f"{k}={int(v)}" for k, v in sorted(self.rows["split"].value_counts().items()))
                )
        for reason, n in sorted(self.excluded.items()):
            lines.append(f"  left out by option: {n} ({reason})")
        if self.ignored:
            lines.append(f"  ignored: {self.ignored} files that are not media")
        if len(self.unmatched):
            lines.append(
                f"  NOT USED: {len(self.unmatched)} media files that do not fit the naming or repeat a recording:"
            )
            for r in self.unmatched.head(10).itertuples():
                lines.append(f"    {r.path}: {r.reason}")
            if len(self.unmatched) > 10:
                lines.append(
                    f"    ... and {len(self.unmatched) - 10} more (see the .unmatched.csv beside the manifest)"
                )
        return "\n".join(lines)


def _walk(root: Path):
    """(path, relative parts) of every non-hidden file under root, in sorted order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                p = Path(dirpath, f)
                out.append((p, p.relative_to(root).parts))
    return out


def _safe_id(text: str) -> str:
    vid = _UNSAFE.sub("_", text).lstrip("._-") or "x"
    if len(vid) > 128:
        vid = vid[:115] + "-" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
    return vid


def _options(corpus: str, options: dict | None) -> dict:
    if corpus not in DEFAULTS:
        raise EmoflowError(f"unknown corpus {corpus!r} (adapters: {', '.join(DEFAULTS)})")
    opts = dict(DEFAULTS[corpus])
    for k, v in (options or {}).items():
        if v is None and k not in opts:
            continue
        if k not in opts:
            raise EmoflowError(f"corpus {corpus}: unknown option {k!r} (options: {', '.join(opts)})")
        opts[k] = v
    return opts


def _label(native: str, labels: str, calm: str = "neutral") -> str | None:
    if labels == "native":
        return native
    if labels != "fer2013":
        raise EmoflowError(f"labels must be 'native' or 'fer2013', not {labels!r}")
    if native == "calm":
        return None if calm == "drop" else "neutral"
    return TO_FER2013.get(native, native)


def decode_ravdess(stem: str) -> dict:
    """Every field of a RAVDESS file name, or ValueError saying what does not fit."""
    m = _RAVDESS_NAME.fullmatch(stem)
    if not m:
        raise ValueError("not a RAVDESS name (MM-VC-EE-II-SS-RR-AA, seven two-digit fields)")
    mo, vc, em, it, st, rep, ac = m.groups()
    bad = []
    for value, table, what in (
        (mo, RAVDESS_MODALITY, "modality"),
        (vc, RAVDESS_CHANNEL, "vocal channel"),
        (em, RAVDESS_EMOTION, "emotion"),
        (it, RAVDESS_INTENSITY, "intensity"),
        (st, RAVDESS_STATEMENT, "statement"),
    ):
        if value not in table:
            bad.append(f"{what} {value} is not one of {'/'.join(table)}")
    if rep not in ("01", "02"):
        bad.append(f"repetition {rep} is not 01/02")
    if not 1 <= int(ac) <= RAVDESS_ACTORS:
        bad.append(f"actor {ac} is not 01-{RAVDESS_ACTORS}")
    if not bad and em == "01" and it == "02":
        bad.append("neutral has no strong intensity (02) in RAVDESS")
    if not bad and vc == "02" and RAVDESS_EMOTION[em] not in RAVDESS_SONG_EMOTIONS:
        bad.append(f"song has no {RAVDESS_EMOTION[em]} in RAVDESS")
    if bad:
        raise ValueError("; ".join(bad))
    actor = int(ac)
    return {
        "modality": RAVDESS_MODALITY[mo],
        "vocal_channel": RAVDESS_CHANNEL[vc],
        "emotion": RAVDESS_EMOTION[em],
        "intensity": RAVDESS_INTENSITY[it],
        "statement": RAVDESS_STATEMENT[st],
        "repetition": int(rep),
        "actor": actor,
        "speaker": f"actor{actor:02d}",
        "gender": "male" if actor % 2 else "female",
    }


def decode_cremad(stem: str) -> dict:
    """Every field of a CREMA-D file name, or ValueError saying what does not fit."""
    m = _CREMAD_NAME.fullmatch(stem)
    if not m:
        raise ValueError("not a CREMA-D name (SSSS_SEN_EMO_LV, e.g. 1001_DFA_ANG_XX)")
    spk, sen, emo, lev = m.groups()
    bad = []
    if int(spk) not in CREMAD_SPEAKERS:
        bad.append(f"speaker {spk} is not 1001-1091")
    if sen not in CREMAD_SENTENCES:
        bad.append(f"sentence {sen} is not one of {'/'.join(CREMAD_SENTENCES)}")
    if emo not in CREMAD_EMOTION:
        bad.append(f"emotion {emo} is not one of {'/'.join(CREMAD_EMOTION)}")
    if lev not in CREMAD_LEVELS:
        bad.append(f"level {lev} is not one of {'/'.join(CREMAD_LEVELS)}")
    if bad:
        raise ValueError("; ".join(bad))
    return {"speaker": spk, "sentence": sen, "emotion": CREMAD_EMOTION[emo], "level": lev}


def _cremad_sex(root: Path) -> dict[str, str]:
    for p in sorted(root.glob("VideoDemographics.csv")) + sorted(root.glob("*/VideoDemographics.csv")):
        try:
            df = pd.read_csv(p, dtype=str)
            return {r.ActorID.strip(): r.Sex.strip().lower() for r in df.itertuples() if isinstance(r.Sex, str)}
        except (OSError, ValueError, AttributeError, pd.errors.ParserError):
            return {}
    return {}


def _pick(found: dict[str, list[tuple[Path, dict]]], prefer: tuple[str, ...]):
    """One file per recording id (the first by ``prefer`` extension order, then path); the
    others as (path, reason)."""
    rank = {e: i for i, e in enumerate(prefer)}
    kept, others = {}, []
    for vid, items in found.items():
        items = sorted(items, key=lambda it: (rank.get(it[0].suffix.lower(), len(rank)), str(it[0])))
        kept[vid] = items[0]
        for p, _ in items[1:]:
            same = p.suffix.lower() == items[0][0].suffix.lower()
            what = "duplicate of" if same else "another format of"
            others.append((p, f"{what} {vid} (kept: {items[0][0]})"))
    return kept, others


def scan(corpus: str, root: str | os.PathLike, options: dict | None = None) -> Scan:
    """Walk ``root`` with the ``corpus`` adapter (``ravdess``, ``cremad``, ``folder``)."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise EmoflowError(f"corpus root {root} does not exist or is not a folder")
    opts = _options(corpus, options)
    unmatched: list[tuple[Path, str]] = []
    excluded: dict[str, int] = {}
    ignored = 0
    found: dict[str, list[tuple[Path, dict]]] = {}
    media = []
    for path, parts in _walk(root):
        if path.suffix.lower() not in MEDIA_EXT:
            ignored += 1
        else:
            media.append((path, parts))

    def exclude(reason):
        excluded[reason] = excluded.get(reason, 0) + 1

    if corpus == "ravdess":
        for key, allowed in (("modalities", RAVDESS_MODALITY.values()), ("channels", RAVDESS_CHANNEL.values())):
            wrong = [v for v in opts[key] if v not in allowed]
            if wrong or not opts[key]:
                raise EmoflowError(f"ravdess: {key} {wrong or '[]'}: choose from {', '.join(allowed)}")
        for path, _ in media:
            try:
                f = decode_ravdess(path.stem)
            except ValueError as exc:
                unmatched.append((path, str(exc)))
                continue
            if f["modality"] not in opts["modalities"]:
                exclude(f"modality {f['modality']}")
                continue
            if f["vocal_channel"] not in opts["channels"]:
                exclude(f"vocal channel {f['vocal_channel']}")
                continue
            label = _label(f["emotion"], opts["labels"], opts["calm"])
            if label is None:
                exclude(f"{f['emotion']} dropped (calm: drop)")
                continue
            found.setdefault(path.stem, []).append((path, {"label": label, "split": "", **f}))
        kept, others = _pick(found, MEDIA_EXT)
    elif corpus == "cremad":
        prefer = {"video": VIDEO_EXT, "audio": AUDIO_EXT}.get(opts["media"])
        if prefer is None:
            raise EmoflowError(f"cremad: media {opts['media']!r}: choose video or audio")
        sex = _cremad_sex(root)
        for path, _ in media:
            try:
                f = decode_cremad(path.stem)
            except ValueError as exc:
                unmatched.append((path, str(exc)))
                continue
            if path.suffix.lower() not in prefer:
                exclude(f"{path.suffix.lower()} files (media: {opts['media']})")
                continue
            label = _label(f["emotion"], opts["labels"])
            found.setdefault(path.stem, []).append(
                (path, {"label": label, "split": "", **f, "gender": sex.get(f["speaker"], "")})
            )
        kept, others = _pick(found, prefer)
    elif corpus == "folder":
        rx = re.compile(opts["speaker_regex"]) if opts["speaker_regex"] else None
        split_layout = any(len(parts) == 3 and parts[0] in SPLITS for _, parts in media)
        for path, parts in media:
            if split_layout and (len(parts) != 3 or parts[0] not in SPLITS):
                unmatched.append((path, "not in ROOT/<split>/<label>/ (split: train, val or test)"))
                continue
            if not split_layout and len(parts) != 2:
                unmatched.append((path, "not in ROOT/<label>/ (or ROOT/<split>/<label>/)"))
                continue
            split, label = (parts[0], parts[1]) if split_layout else ("", parts[0])
            speaker = ""
            if rx is not None:
                m = rx.search(path.stem)
                if not m:
                    unmatched.append((path, f"speaker_regex {rx.pattern!r} does not match {path.stem!r}"))
                    continue
                speaker = m.group("speaker") if "speaker" in rx.groupindex else m.group(1) if rx.groups else m.group(0)
            rel = "/".join(parts[:-1] + (path.stem,))
            found.setdefault(rel, []).append((path, {"label": label, "split": split, "speaker": speaker}))
        kept, others = _pick(found, MEDIA_EXT)
        # ids: the file stem where unique across the corpus, else the relative path
        stems = pd.Series([k.rsplit("/", 1)[-1] for k in kept]).value_counts()
        renamed = {}
        for rel in sorted(kept):
            stem = rel.rsplit("/", 1)[-1]
            vid = _safe_id(stem if stems[stem] == 1 else rel.replace("/", "__"))
            while vid.lower() in {v.lower() for v in renamed.values()}:  # collisions after sanitising
                vid = _safe_id(vid + "-" + hashlib.blake2b(rel.encode(), digest_size=3).hexdigest())
            renamed[rel] = vid
        kept = {renamed[rel]: v for rel, v in kept.items()}
    else:
        raise EmoflowError(f"unknown corpus {corpus!r} (adapters: {', '.join(DEFAULTS)})")
    unmatched += others
    for vid, (path, _) in list(kept.items()):
        if "{" in str(path) or "}" in str(path):
            unmatched.append((path, "braces in the path (Snakemake reads them as wildcards): rename the file"))
            del kept[vid]
    records = [{"video_id": vid, "path": str(p), **fields} for vid, (p, fields) in sorted(kept.items())]
    base = ["video_id", "path", "label", "split", "speaker"]
    rows = pd.DataFrame.from_records(records)
    if rows.empty:
        rows = pd.DataFrame(columns=base)
    rows = rows[base + [c for c in rows.columns if c not in base]]
    un = pd.DataFrame(sorted((str(p), r) for p, r in unmatched), columns=["path", "reason"])
    return Scan(corpus, root, rows.reset_index(drop=True), un, excluded, ignored)


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return buf.getvalue()


def unmatched_path(manifest: str | os.PathLike) -> Path:
    manifest = Path(manifest)
    return manifest.with_name(manifest.name.rsplit(".", 1)[0] + ".unmatched.csv")


def write(result: Scan, out: str | os.PathLike, absolute: bool = False) -> tuple[Path, Path]:
    """Write the manifest (paths relative to its folder unless ``absolute``) and the
    unmatched list beside it (always, header only when empty)."""
    from emoflow.storage import write_text

    out = Path(out)
    rows = result.rows.copy()
    if not absolute:
        here = os.path.abspath(out.parent)
        rows["path"] = [os.path.relpath(p, here) for p in rows["path"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, _csv(rows))
    side = unmatched_path(out)
    write_text(side, _csv(result.unmatched))
    return out, side


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="emoflow manifest",
        description=__doc__.split("\n\n")[0],
        epilog="Adapters and their options: see 'python -m pydoc emoflow.dataset.corpora'.",
    )
    ap.add_argument("corpus", choices=sorted(DEFAULTS))
    ap.add_argument("root", help="the corpus folder as downloaded (searched recursively)")
    ap.add_argument("-o", "--out", required=True, help="manifest CSV to write (<name>.unmatched.csv goes beside it)")
    ap.add_argument("--modalities", help="ravdess: comma list of av, video, audio (default: all)")
    ap.add_argument("--channels", help="ravdess: comma list of speech, song (default: both)")
    ap.add_argument("--labels", choices=["native", "fer2013"], help="native classes (default) or FER2013's 7")
    ap.add_argument(
        "--calm",
        choices=["neutral", "drop"],
        help="ravdess with --labels fer2013: calm -> neutral (default) or dropped",
    )
    ap.add_argument("--media", choices=["video", "audio"], help="cremad: which file of each clip (default video)")
    ap.add_argument(
        "--speaker-regex", help="folder: regex on the file name giving the speaker (group 'speaker', else 1)"
    )
    ap.add_argument("--absolute", action="store_true", help="write absolute paths (default: relative to the manifest)")
    ap.add_argument("--options", help="adapter options as JSON (what the workflow's manifest rule passes)")
    args = ap.parse_args(argv)
    import json

    options = json.loads(args.options) if args.options else {}
    for key in ("modalities", "channels"):
        if getattr(args, key):
            options[key] = [v.strip() for v in getattr(args, key).split(",") if v.strip()]
    for key in ("labels", "calm", "media", "speaker_regex"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    try:
        result = scan(args.corpus, args.root, options)
        if result.rows.empty:
            raise EmoflowError(f"corpus root {result.root} holds no {args.corpus} files to use\n{result.summary()}")
        out, side = write(result, args.out, absolute=args.absolute)
    except (EmoflowError, re.error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"wrote {out} ({len(result.rows)} rows) and {side} ({len(result.unmatched)} unmatched)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
