"""The extractor registry agrees with the config schema, the envs and the code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emoflow.features import registry
from emoflow.features.base import Extractor

REPO = Path(__file__).resolve().parents[1]
KINDS = {"audio", "transcripts", "crops", "frames"}


def test_every_entry_names_a_real_extractor_env_and_input_kind():
    for name, e in registry.REGISTRY.items():
        cls = registry.load(name)
        assert issubclass(cls, Extractor), name
        assert cls.level in {"video", "frame", "clip", "segment"}, name
        assert e.input in KINDS, name
        assert (REPO / "envs" / f"{e.env}.yaml").is_file(), f"{name}: envs/{e.env}.yaml"


def test_config_accepts_exactly_the_registered_extractors(tmp_path):
    """The registry is the one list of extractor types: the config check reads it."""
    from emoflow.config import load_config
    from emoflow.errors import ConfigError

    for name in registry.REGISTRY:
        (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"features": {"x": {"extractor": name}}}))
        assert load_config([REPO / "config.yaml", tmp_path / "ok.yaml"])["features"]["x"]["extractor"] == name
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"features": {"x": {"extractor": "mfccs"}}}))
    with pytest.raises(ConfigError) as err:
        load_config([REPO / "config.yaml", bad])
    msg = str(err.value)
    assert "features.x.extractor" in msg and "'mfccs'" in msg and "mfcc," in msg and str(bad) in msg


def test_default_config_entries_use_only_declared_parameters():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for name, params in cfg["features"].items():
        cls = registry.load(params["extractor"])
        unknown = set(params) - {"extractor"} - set(cls.defaults)
        assert not unknown, f"features.{name}: {sorted(unknown)} not in {cls.__name__}.defaults"
