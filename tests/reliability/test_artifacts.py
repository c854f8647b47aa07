"""Saved models: nothing a user owns is ever deleted, a kill never leaves no artifact,
and every damaged or inconsistent artifact is one clear `ArtifactError`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from cinerec import artifacts
from cinerec.errors import ArtifactError, UnsafeTarget
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset

REPO = Path(__file__).resolve().parents[2]


def _fit(name="svd", **cfg):
    ds = make_ratings_dataset(seed=21)
    return create_model(name, {"n_factors": 4, "epochs": 3} | cfg).fit(ds), ds


@pytest.fixture
def saved(tmp_path):
    model, _ = _fit()
    return artifacts.save_model(model, tmp_path / "m"), model


# ---- never destroy what the user owns ------------------------------------------------------
def test_a_folder_that_is_not_an_artifact_is_never_replaced(tmp_path):
    model, _ = _fit()
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "chapter1.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(UnsafeTarget, match="did not write"):
            artifacts.save_model(model, target, overwrite=overwrite)
    assert (target / "chapter1.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_a_regular_file_is_never_replaced(tmp_path):
    model, _ = _fit()
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(UnsafeTarget, match="is a file"):
        artifacts.save_model(model, target, overwrite=True)
    assert target.read_text() == "keep me"


def test_empty_folder_is_fine_and_cwd_is_refused(tmp_path, monkeypatch):
    model, _ = _fit()
    (tmp_path / "empty").mkdir()
    artifacts.save_model(model, tmp_path / "empty")
    assert artifacts.is_artifact(tmp_path / "empty")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(UnsafeTarget, match="current directory"):
        artifacts.save_model(model, Path("."), overwrite=True)


def _save_in_subprocess(path: Path, epochs: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from cinerec import artifacts
        from cinerec.models.registry import create_model
        from tests.conftest import make_ratings_dataset
        m = create_model("svd", n_factors=4, epochs={epochs}).fit(make_ratings_dataset(seed=21))
        artifacts.save_model(m, {str(path)!r}, overwrite=True)
    """)
    return subprocess.run([sys.executable, "-c", code], env=os.environ | env, capture_output=True, timeout=120)


@pytest.mark.parametrize(
    ("point", "expect_epochs", "no_exchange"),
    [("dir-filled", 3, False), ("before-exchange", 3, False), ("after-exchange", 7, False),
     ("before-exchange", 3, True)],
)  # fmt: skip
def test_a_kill_during_replace_leaves_the_old_or_the_new_artifact(saved, point, expect_epochs, no_exchange):
    path, _ = saved
    env = {"CINEREC_FAULT_AT": point} | ({"CINEREC_NO_EXCHANGE": "1"} if no_exchange else {})
    proc = _save_in_subprocess(path, 7, env)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]  # killed at the fault point
    loaded = artifacts.load_model(path)  # complete and verified
    assert loaded.config.epochs == expect_epochs
    leftovers = [p for p in path.parent.iterdir() if p.name.startswith(".m.")]
    assert leftovers, "the killed writer's temporary should still be there"
    # The next write cleans what the dead process left.
    model, _ = _fit()
    artifacts.save_model(model, path.parent / "other")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".m.")]


def test_a_kill_between_the_fallback_renames_is_recovered(saved):
    path, _ = saved
    proc = _save_in_subprocess(path, 7, {"CINEREC_FAULT_AT": "between-renames", "CINEREC_NO_EXCHANGE": "1"})
    assert proc.returncode == -9
    assert not path.exists()  # the one window the two-rename fallback has
    assert artifacts.load_model(path).config.epochs == 3  # recovered on the next access
    assert path.is_dir()


# ---- damaged files --------------------------------------------------------------------------
def _rehash(path: Path) -> None:
    """Make the manifest agree with the files again (so only the damage itself is seen)."""
    man = json.loads((path / "manifest.json").read_text())
    for name in man["files"]:
        f = path / name
        man["files"][name] = {"bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b"", "not a readable safetensors"),
        (lambda b: b[: len(b) // 2], "not a readable safetensors"),
        (lambda b: b"\xff" * 64, "not a readable safetensors"),
        (lambda b: (2**62).to_bytes(8, "little") + b[8:], "not a readable safetensors"),
        (lambda b: b[:8] + b"{not json" + b[17:], "not a readable safetensors"),
    ],
    ids=["zero-bytes", "truncated", "garbage", "huge-header", "bad-header-json"],
)
def test_damaged_weights_are_a_clear_error(saved, damage, match):
    path, _ = saved
    f = path / "model.safetensors"
    f.write_bytes(damage(f.read_bytes()))
    with pytest.raises(ArtifactError, match="truncated or replaced|checksum"):
        artifacts.load_model(path)  # the manifest notices first
    _rehash(path)
    with pytest.raises(ArtifactError, match=match):
        artifacts.load_model(path)


def test_a_flipped_bit_is_caught_by_the_checksum(saved):
    path, _ = saved
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0x10
    f.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        artifacts.load_model(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("{oops", "not valid JSON"), ("[]", "JSON object"), ("null", "JSON object"),
     ('{"format": 2}', "does not say which model"), ('{"format": 2, "model": "no-such"}', "holds 'no-such'"),
     ('{"format": 2, "model": "svd", "config": [1]}', "must be an object"),
     ('{"format": 2, "model": "svd", "config": {"n_factors": "x"}}', "n_factors")],
)  # fmt: skip
def test_bad_config_json(saved, text, match):
    path, _ = saved
    (path / "config.json").write_text(text)
    _rehash(path)
    with pytest.raises(ArtifactError, match=match):
        artifacts.load_model(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [(lambda m: "[]", "JSON object"), (lambda m: "{", "not valid JSON"),
     (lambda m: json.dumps(m | {"format": 99}), "format 99"),
     (lambda m: json.dumps(m | {"model": "als"}), "manifest.json says 'als'"),
     (lambda m: json.dumps(m | {"files": {}}), "lists no files"),
     (lambda m: json.dumps(m | {"sizes": {"n_users": 1, "n_items": 2}}), "records")],
)  # fmt: skip
def test_bad_manifest(saved, edit, match):
    path, _ = saved
    man = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(edit(man))
    with pytest.raises(ArtifactError, match=match):
        artifacts.load_model(path)


def test_another_models_weights(saved, tmp_path):
    path, _ = saved
    other, _ = _fit("als")
    artifacts.save_model(other, tmp_path / "als")
    (path / "model.safetensors").write_bytes((tmp_path / "als" / "model.safetensors").read_bytes())
    _rehash(path)
    with pytest.raises(ArtifactError, match="weights of 'als'"):
        artifacts.load_model(path)


def test_weights_that_disagree_with_the_config(saved):
    path, _ = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["config"]["n_factors"] = 8  # the tables hold 4
    (path / "config.json").write_text(json.dumps(cfg))
    _rehash(path)
    with pytest.raises(ArtifactError, match=r"shape \(\d+, 4\), expected \(\d+, 8\)"):
        artifacts.load_model(path)


def test_nan_weights(saved):
    path, _ = saved
    state = load_file(str(path / "model.safetensors"))
    state["model.Q"] = state["model.Q"].copy()
    state["model.Q"][0, 0] = np.nan
    save_file(state, str(path / "model.safetensors"), metadata={"cinerec_model": "svd", "format": "2"})
    _rehash(path)
    with pytest.raises(ArtifactError, match="'model.Q' contains NaN"):
        artifacts.load_model(path)


def test_missing_arrays_and_ids(saved):
    path, _ = saved
    state = load_file(str(path / "model.safetensors"))
    state.pop("model.bu")
    save_file(state, str(path / "model.safetensors"), metadata={"cinerec_model": "svd", "format": "2"})
    _rehash(path)
    with pytest.raises(ArtifactError, match="'bu'"):
        artifacts.load_model(path)


def test_ids_that_do_not_match_the_weights(saved):
    path, _ = saved
    ids = load_file(str(path / "ids.safetensors"))
    ids["user_ids"] = ids["user_ids"][:-1]
    save_file(ids, str(path / "ids.safetensors"))
    _rehash(path)
    with pytest.raises(ArtifactError, match="ids.safetensors"):
        artifacts.load_model(path)


def test_not_a_folder(tmp_path):
    with pytest.raises(ArtifactError, match="no such folder"):
        artifacts.load_model(tmp_path / "nothing")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArtifactError):
        artifacts.load_model(tmp_path / "f")
