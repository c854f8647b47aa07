"""`cinerec stats DATASET --out DIR`: files, figures, terminal, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import cinerec.data
from cinerec.cli import app, main
from tests.conftest import make_ratings_dataset


@pytest.fixture
def fake_loader(monkeypatch):
    ds = make_ratings_dataset(n_users=60, n_items=40, density=0.4, seed=1, name="fake")
    rng = np.random.default_rng(0)
    g = rng.random((ds.n_items, 3)) < 0.5
    ts = 1_200_000_000 + rng.integers(0, 4 * 365 * 86400, ds.n_ratings)
    ds = replace(ds, item_genres=g, genre_names=("Action", "Comedy", "Drama"), timestamps=ts)
    seen = []

    def load(name_or_path, *args, **kwargs):
        seen.append(str(name_or_path))
        return ds

    monkeypatch.setattr(cinerec.data, "load_dataset", load, raising=False)
    return seen


def test_stats_command_writes_tables_and_figures(fake_loader, tmp_path) -> None:
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["stats", "fake-set", "--out", str(out), "--min-count", "3"])
    assert res.exit_code == 0, res.output
    assert fake_loader == ["fake-set"]
    for name in ("variance.md", "tiers.csv", "genres.csv", "correlation.csv", "user_classes.csv",
                 "user_tests.csv", "holiday.csv", "sigma_vs_mean.png", "tiers_genres.png",
                 "user_sigma.png", "holiday.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "sigma_vs_mean.png").read_bytes()[:4] == b"\x89PNG"
    assert "Rating tiers" in res.output and "Holiday" in res.output


def test_stats_quiet_prints_only_paths(fake_loader, tmp_path) -> None:
    res = CliRunner().invoke(
        app, ["stats", "x", "--out", str(tmp_path), "--min-count", "3", "--quiet", "--no-figures"]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines and all(line.startswith(str(tmp_path)) for line in lines)
    assert not list(tmp_path.glob("*.png"))


def test_stats_user_error_exits_2_with_message(fake_loader, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["stats", "x", "--out", str(tmp_path), "--min-count", "100000"])
    assert e.value.code == 2
    assert "--min-count" in capsys.readouterr().err


@pytest.mark.realdata
def test_ml_latest_small_analysis(data_home) -> None:
    from cinerec.stats import analyze

    ds = cinerec.data.load_dataset(data_home / "ml-latest-small.zip", progress=False)
    a = analyze(ds, min_count=10)
    assert a.n_ratings == 100_836
    assert a.tiers.get_column("n_movies").sum() == a.movies.height
    pear = a.correlation.row(0, named=True)
    assert pear["ci_low"] <= pear["r"] <= pear["ci_high"]
    assert {"Drama", "Comedy", "Action"} <= set(a.genres.get_column("genre"))
