from emoflow import codedeps


def names(files):
    return {f.split("src/", 1)[1] for f in files}


def test_stage_code_closure_is_exact():
    audio = names(codedeps.source_files("emoflow.media.audio"))
    assert {
        "emoflow/__init__.py",
        "emoflow/media/__init__.py",
        "emoflow/media/audio.py",
        "emoflow/media/ffmpeg.py",
        "emoflow/storage.py",
        "emoflow/tables.py",
        "emoflow/logs.py",
    } <= audio
    assert "emoflow/media/frames.py" not in audio and "emoflow/media/probe.py" not in audio
    frames = names(codedeps.source_files("emoflow.media.frames"))
    assert "emoflow/media/audio.py" not in frames and "emoflow/media/frames.py" in frames


def test_third_party_imports_are_found():
    ext = codedeps.third_party("emoflow.media.frames")
    assert {"ffmpeg", "numpy", "PIL", "pyarrow", "tqdm"} <= set(ext)
    assert "os" not in ext and "emoflow" not in ext


def test_relative_and_from_imports(tmp_path):
    pkg = tmp_path / "emoflow"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import b\nfrom ..c import thing\nimport requests\n")
    (pkg / "sub" / "b.py").write_text("")
    (pkg / "c.py").write_text("import yaml.constructor\n")
    mods, ext = codedeps.closure("emoflow.sub.a", tmp_path)
    assert set(mods) == {"emoflow", "emoflow.sub", "emoflow.sub.a", "emoflow.sub.b", "emoflow.c"}
    assert set(ext) == {"requests", "yaml"}
