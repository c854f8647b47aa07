"""Regression tests for what the fuzz run (`benchmarks/fuzz.py`) found: each input here
once escaped as an undeclared exception or was served as a silently broken model."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from cinerec import artifacts
from cinerec.data.splits import make_split
from cinerec.errors import ArtifactError, ConfigError
from cinerec.models.query import History, Query
from tests.reliability.fuzz_targets import _artifact, _dataset, _model


def test_a_negative_split_seed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="seed"):
        make_split(_dataset(), "kfold:2:1", seed=-1)


@pytest.mark.parametrize("user", [2**63, -(2**63) - 5])
def test_a_user_index_beyond_int64_is_a_config_error(user: int) -> None:
    with pytest.raises(ConfigError, match="user"):
        _model().recommend_batch([Query(user=user)], k=3)


@pytest.mark.parametrize("field", ["exclude", "candidates"])
def test_item_lists_beyond_int64_or_fractional_are_config_errors(field: str) -> None:
    for bad in ([2**64], [1.5], ["x"]):
        with pytest.raises(ConfigError, match=field):
            _model().recommend(Query(user=0, **{field: bad}), k=3)


def test_a_history_of_fractional_items_or_huge_ratings_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="whole-number"):
        History(items=[1.5], ratings=[4.0])
    with pytest.raises(ConfigError, match="scale"):
        History(items=[1], ratings=[1e308])


def _copy_with(tmp_path, name: str, content: bytes):
    dst = tmp_path / "m"
    shutil.copytree(_artifact(), dst)
    (dst / name).write_bytes(content)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.mark.parametrize(("key", "change", "match"), [
    ("_base.seen_indices", lambda a: a + 1000, "out of range"),
    ("_base.seen_indptr", lambda a: np.concatenate([a[:1], a[-1:], a[2:]]), "out of range"),
    ("_base.item_counts", lambda a: -a - 1, "negative"),
    ("_base.item_confidence", lambda a: a + 5, "confidence"),
])  # fmt: skip
def test_inconsistent_base_arrays_are_refused_at_load(tmp_path, key, change, match) -> None:
    arrays = load_file(str(_artifact() / "model.safetensors"))
    arrays[key] = change(arrays[key])
    path = tmp_path / "w.safetensors"
    save_file(arrays, str(path), metadata={"cinerec_model": "svd", "format": "2"})
    damaged = _copy_with(tmp_path, "model.safetensors", path.read_bytes())
    with pytest.raises(ArtifactError, match=match):
        artifacts.load_model(damaged)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda c: c | {"format": [1]}, "format"),
    (lambda c: c | {"": {}}, "unknown keys"),
])  # fmt: skip
def test_config_json_disagreeing_with_the_manifest_is_refused(tmp_path, edit, match) -> None:
    config = json.loads((_artifact() / "config.json").read_text())
    damaged = _copy_with(tmp_path, "config.json", json.dumps(edit(config)).encode())
    with pytest.raises(ArtifactError, match=match):
        artifacts.load_model(damaged)


def test_a_zip_member_flagged_as_encrypted_is_a_data_format_error(tmp_path) -> None:
    import zipfile

    from cinerec.data import load_dataset
    from cinerec.errors import DataFormatError

    src = tmp_path / "ml-fuzz.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("ml-fuzz/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n")
    data = bytearray(src.read_bytes())
    # Set the "encrypted" flag bit in the local header and the central directory entry.
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(sig)
        flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 1
    src.write_bytes(bytes(data))
    with pytest.raises(DataFormatError):
        load_dataset(src, cache=False, progress=False)
