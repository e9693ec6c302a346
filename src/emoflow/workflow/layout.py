"""A run's named paths: the one owner of where every stage's results live.

``Layout(root)`` names the files of one results folder (``results/<run>`` of a workflow
run, or a predictor's chunk folder).  Per-shard paths take the shard name; left out it is
the ``{shard}`` wildcard, so a rule writes ``L.frames()`` where it used to spell
``f"{OUT}/frames/{{shard}}.parquet"``.  The same goes for ``table`` (a feature table) and
other names: any argument may be a Snakemake wildcard.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARD = "{shard}"

#: what an extractor of each registry input kind reads for one shard, as Layout method
#: names, in the order its reader takes them (emoflow.features.base.iter_inputs)
INPUT_KINDS = {
    "audio": ("audio_index", "audio_wavs"),
    "transcripts": ("text",),
    "crops": ("sheet", "face_videos", "crops", "faces"),
    "frames": ("sheet", "frames"),
}


@dataclass(frozen=True)
class Layout:
    root: str

    def path(self, *parts: str) -> str:
        return "/".join([str(self.root), *parts])

    # --- per shard -------------------------------------------------------------------
    def sheet(self, shard: str = SHARD) -> str:
        """The shard's sheet: its videos (rule shard_sheet)."""
        return self.path("shards", f"{shard}.parquet")

    def probe(self, shard: str = SHARD) -> str:
        return self.path("probe", f"{shard}.parquet")

    def frames(self, shard: str = SHARD) -> str:
        return self.path("frames", f"{shard}.parquet")

    def audio_index(self, shard: str = SHARD) -> str:
        return self.path("audio", f"{shard}.parquet")

    def audio_wavs(self, shard: str = SHARD) -> str:
        """The shard's folder of 16 kHz mono wavs (one per video with audio)."""
        return self.path("audio", shard)

    def faces(self, shard: str = SHARD) -> str:
        return self.path("faces", f"{shard}.parquet")

    def face_videos(self, shard: str = SHARD) -> str:
        return self.path("faces", f"{shard}.videos.parquet")

    def crops(self, shard: str = SHARD) -> str:
        return self.path("crops", f"{shard}.parquet")

    def text(self, shard: str = SHARD) -> str:
        return self.path("text", f"{shard}.parquet")

    def skips(self, stage: str, shard: str = SHARD) -> str:
        """A stage's skip table (``stage``: probe, frames, audio, faces, asr, features/<table>)."""
        return self.path("skips", stage, f"{shard}.parquet")

    def features(self, table: str, shard: str = SHARD) -> str:
        return self.path("features", table, f"{shard}.parquet")

    def feature_skips(self, table: str, shard: str = SHARD) -> str:
        return self.skips(f"features/{table}", shard)

    def e2e_tta(self, table: str, shard: str = SHARD) -> str:
        """An e2e network's face transform cache (``table``: ``<face feature>_tta``)."""
        return self.path("e2e", "tta", table, f"{shard}.parquet")

    def inputs(self, kind: str, shard: str = SHARD) -> list[str]:
        """What an extractor of registry input ``kind`` reads for one shard."""
        try:
            names = INPUT_KINDS[kind]
        except KeyError:
            raise ValueError(f"unknown extractor input kind {kind!r} (known: {sorted(INPUT_KINDS)})") from None
        return [getattr(self, n)(shard) for n in names]

    def crop_inputs(self, shard: str = SHARD) -> list[str]:
        """One shard's face-stage outputs, in the order the crop reader takes them."""
        return self.inputs("crops", shard)

    def log(self, stage: str, name: str = SHARD) -> str:
        return self.path("logs", stage, f"{name}.log")

    # --- fits ------------------------------------------------------------------------
    def fitted(self, kind: str, name: str = "{name}", ext: str = ".json") -> str:
        """A fitted model of ``kind`` (an extractor, expression_embedding, ...)."""
        return self.path("models", kind, f"{name}{ext}")

    def fit_outputs(self, kind: str, weights: str | None, name: str = "{name}") -> dict[str, str]:
        """A fit's outputs: its JSON (``meta``) and, when it has one, the weights file of
        suffix ``weights`` beside it (``model``)."""
        return {"meta": self.fitted(kind, name)} | ({"model": self.fitted(kind, name, weights)} if weights else {})
