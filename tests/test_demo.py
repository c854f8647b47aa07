"""`make demo`'s job, with fast models: real data when present, synthetic offline."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cinerec import demo


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=160), buf


@pytest.mark.realdata
def test_demo_on_real_data(data_home, tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    console, buf = _console()
    demo.run(console, ["mean", "item-knn"], "random:0.9", tmp_path / "out")
    text = buf.getvalue()
    assert "ml-latest-small" in text and "100,836 ratings" in text
    assert "top 10 for user" in text and "(item-knn)" in text
    assert "the movies you rated that carried it most" in text  # item-knn's caption
    assert (tmp_path / "out" / "compare.md").read_text().count("item-knn") >= 1
    assert (tmp_path / "out" / "item-knn" / "model.safetensors").exists()


def test_demo_offline_generates_synthetic_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(tmp_path / "home"))
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CINEREC_OFFLINE", "1")
    monkeypatch.setattr(demo, "SYNTHETIC", {"n_ratings": 20_000, "n_users": 300, "n_items": 500, "seed": 0})
    console, buf = _console()
    demo.run(console, ["mean", "bias"], "random:0.9", tmp_path / "out")
    text = buf.getvalue()
    assert "synthetic" in text and "20,000 ratings" in text
    assert (tmp_path / "home" / "synthetic-demo" / "ratings.csv").exists()
