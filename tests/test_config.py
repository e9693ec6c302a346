import pytest
import yaml

from conftest import REPO
from emoflow.config import deep_merge, load_config, resolve_data_root, stage_slice
from emoflow.errors import ConfigError


def test_default_config_validates_and_fills_defaults(tmp_path):
    minimal = tmp_path / "c.yaml"
    minimal.write_text("outdir: out\nlabel_spaces: {demo3: [happy, sad, surprise]}\n")
    cfg = load_config([minimal])
    assert cfg["frames"]["fps"] == 5 and cfg["frames"]["max_side"] == 640
    assert cfg["audio"]["sample_rate"] == 16000
    assert cfg["demo"]["speakers"] == {"train": 8, "val": 2, "test": 2}
    assert cfg["sharding"]["n_shards"] == 4


def test_repo_config_and_preset_merge(tmp_path, monkeypatch):
    root = tmp_path / "shared"
    (root / "paired_av").mkdir(parents=True)
    (root / "paired_av" / "manifest.csv").write_text("video_id,path\n")
    monkeypatch.setenv("EMOFLOW_DATA_ROOT", str(root))
    cfg = load_config([REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"])
    assert cfg["outdir"] == "results/paired_av"
    assert cfg["dataset"]["manifest"] == str((root / "paired_av" / "manifest.csv").resolve())
    assert cfg["dataset"]["label_space"] == "fer2013"
    assert len(cfg["label_spaces"]["fer2013"]) == 7  # merged from config.yaml
    assert cfg["audio"]["sample_rate"] == 16000  # untouched sections survive the merge


def test_missing_data_root_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOFLOW_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"data root .*nowhere does not exist.*EMOFLOW_DATA_ROOT"):
        load_config([REPO / "config.yaml", REPO / "configs" / "paired_av.yaml"])


@pytest.mark.parametrize(
    "override, message",
    [
        ({"frames": {"fps": -1}}, r"frames\.fps: -1 is less than or equal to the minimum of 0"),
        ({"frames": {"fsp": 5}}, r"frames: Additional properties are not allowed \('fsp' was unexpected\)"),
        ({"sharding": {"n_shards": "many"}}, r"sharding\.n_shards: 'many' is not of type 'integer'"),
        ({"dataset": {"label_space": "nope"}}, r"unknown label space 'nope'"),
        ({"dataset": {"source": "manifest"}}, r"dataset\.manifest is required"),
        (
            {"label_maps": {"fer2013": {"demo3": {"happy": "joy"}}}},
            r"label_maps\.fer2013\.demo3: 'happy' maps to 'joy'",
        ),
        ({"demo": {"classes": ["happy", "angry"]}}, r"demo\.classes \['angry'\] are not in label space 'demo3'"),
    ],
)
def test_invalid_configs_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([REPO / "config.yaml"], overrides=override)


def test_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config([bad])


def test_deep_merge_and_stage_slice_are_canonical():
    merged = deep_merge({"a": {"x": 1, "y": [1]}, "b": 1}, {"a": {"y": [2]}})
    assert merged == {"a": {"x": 1, "y": [2]}, "b": 1}
    assert stage_slice({"f": {"b": 1, "a": 2}, "g": 3}, "f") == '{"f":{"a":2,"b":1}}'


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOFLOW_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root({"data_root": str(tmp_path / "cfg")}) == tmp_path / "cfg"
    assert resolve_data_root({}) == tmp_path / "env"
    monkeypatch.delenv("EMOFLOW_DATA_ROOT")
    assert resolve_data_root({}, base_dir=tmp_path / "repo") == (tmp_path / "shared" / "data").resolve()


def test_every_config_default_is_valid_under_its_own_schema():
    import jsonschema

    schema = yaml.safe_load((REPO / "src/emoflow/schemas/config.schema.yaml").read_text())
    checked = 0

    def walk(node):
        nonlocal checked
        if isinstance(node, dict):
            if "default" in node:
                sub = {k: v for k, v in node.items() if k != "default"}
                jsonschema.validate(node["default"], sub)
                checked += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema["properties"])
    assert checked > 40
