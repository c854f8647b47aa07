"""Self-contained artifacts: layout, round trip, format-1 loading and upgrade."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from safetensors.numpy import load_file, save_file

from cinerec import artifacts
from cinerec.data.catalogue import Catalogue
from cinerec.data.dataset import Dataset
from cinerec.errors import UnsafeTarget
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset


def _with_titles(ds: Dataset) -> Dataset:
    from dataclasses import replace

    items = pl.DataFrame({
        "item": np.arange(ds.n_items, dtype=np.int32),
        "movieId": ds.item_ids.ids,
        "title": [f"Film {i}" for i in range(ds.n_items)],
        "year": [1990 + i % 20 for i in range(ds.n_items)],
    })  # fmt: skip
    return replace(ds, items_meta=items)


@pytest.fixture
def trained(tmp_path):
    ds = _with_titles(make_ratings_dataset(seed=11))
    model = create_model("svd", n_factors=4, epochs=5).fit(ds)
    model.provenance = {"data": "tiny", "split": "random:0.9", "seed": 1, "data_fingerprint": ds.fingerprint}
    path = artifacts.save_model(model, tmp_path / "svd", metrics={"rmse": 0.9, "bad": float("nan")})
    return model, ds, path


def test_layout_and_manifest(trained):
    model, ds, path = trained
    files = sorted(p.name for p in path.iterdir())
    assert files == ["config.json", "ids.safetensors", "items.parquet", "manifest.json", "model.safetensors"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == 2 and manifest["kind"] == "cinerec-model" and manifest["model"] == "svd"
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    assert manifest["metrics"] == {"rmse": 0.9, "bad": None}  # NaN is not JSON
    assert manifest["sizes"] == {"n_users": ds.n_users, "n_items": ds.n_items}
    config = json.loads((path / "config.json").read_text())
    assert "progress" not in config["config"] and "threads" not in config["config"]
    assert not list(path.parent.glob(".svd.*"))  # no temporary left


def test_recommend_from_the_artifact_alone(trained):
    model, ds, path = trained
    loaded = artifacts.load_model(path)
    cat = loaded.catalogue
    assert cat.user_ids == ds.user_ids and cat.item_ids == ds.item_ids
    raw_user = int(ds.user_ids.raw(3))
    recs = loaded.recommend(cat.user_index(raw_user), k=5)
    np.testing.assert_array_equal(recs.items, model.recommend(3, k=5).items)
    rec = recs.to_records(cat)[0]
    assert rec["title"].startswith("Film ") and rec["item_id"] == int(ds.item_ids.raw(recs.items[0]))
    h = History(np.array([cat.item_index(int(ds.item_ids.raw(2)))]), np.array([5.0]))
    assert loaded.recommend(Query(history=h), k=3).basis == "fold-in"


def test_existing_artifact_is_replaced_only_with_overwrite(trained):
    model, ds, path = trained
    with pytest.raises(UnsafeTarget, match="--force"):
        artifacts.save_model(model, path)
    before = (path / "model.safetensors").read_bytes()
    model2 = create_model("svd", n_factors=4, epochs=6).fit(ds)
    artifacts.save_model(model2, path, overwrite=True)
    assert (path / "model.safetensors").read_bytes() != before
    assert artifacts.load_model(path).config.epochs == 6


def _as_format_1(path) -> None:
    """Rewrite a format-2 artifact the way format 1 stored it: Surprise-style names and
    run options in the config, no ids, no item table, no seen ratings, no file list."""
    state = load_file(str(path / "model.safetensors"))
    state.pop("_base.seen_ratings")
    save_file(state, str(path / "model.safetensors"))
    (path / "ids.safetensors").unlink()
    (path / "items.parquet").unlink()
    cfg = json.loads((path / "config.json").read_text())
    c = cfg["config"]
    c["n_epochs"] = c.pop("epochs")
    c["lr_all"] = c.pop("lr")
    c["threads"] = 0
    cfg["format"] = 1
    (path / "config.json").write_text(json.dumps(cfg))
    man = json.loads((path / "manifest.json").read_text())
    for key in ("files", "sizes", "kind"):
        man.pop(key)
    man["format"] = 1
    (path / "manifest.json").write_text(json.dumps(man))


def test_format_1_artifacts_load_and_upgrade(trained):
    model, ds, path = trained
    _as_format_1(path)
    old = artifacts.load_model(path)
    assert old.catalogue is None and old.seen_ratings_ is None
    assert old.config.epochs == 5
    np.testing.assert_array_equal(old.score(np.array([1, 2])), model.score(np.array([1, 2])))
    artifacts.upgrade_artifact(path, Catalogue.from_dataset(ds), ds.to_csr().data)
    new = artifacts.load_model(path)
    assert new.catalogue is not None and new.seen_ratings_ is not None
    assert artifacts.read_manifest(path)["format"] == 2
    assert new.recommend(Query(user=3, history=History(np.array([0]), np.array([4.0]))), k=3).basis == "fold-in"
