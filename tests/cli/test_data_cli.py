"""`cinerec data ...` commands."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import cinerec.data.splits as splits_mod
from cinerec.cli import app, main
from cinerec.cli.data import parse_count
from cinerec.errors import ConfigError
from tests.data.test_metadata import write_tmdb
from tests.data.test_movielens import write_csv_release, zip_folder

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data home holding a tiny ml-latest-small.zip; private cache."""
    h = tmp_path / "home"
    h.mkdir()
    zip_folder(write_csv_release(tmp_path / "src", "ml-latest-small"), h / "ml-latest-small.zip")
    monkeypatch.setenv("CINEREC_DATA", str(h))
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    return h


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("25M", 25_000_000), ("162k", 162_000), ("62K", 62_000), ("1000", 1000), ("2.5M", 2_500_000), ("1_000", 1000)],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "-3", "0", "5X"])
def test_parse_count_rejects(text):
    with pytest.raises(ConfigError):
        parse_count(text)


def test_list_shows_presence(home):
    res = runner.invoke(app, ["data", "list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    lines = {ln.split()[1]: ln for ln in res.output.splitlines() if ln.startswith("│ ml-")}
    assert "ml-latest-small.zip" in lines["ml-latest-small"]
    assert "ml-latest-small.zip" not in lines["ml-25m"] and "-" in lines["ml-25m"]
    assert len(lines) == 8


def test_info_counts_and_tmdb(home, tmp_path):
    write_tmdb(home / "tmdb_5000_movies.csv", [(862, "Toy Story"), (629, "Suspects")])
    res = runner.invoke(app, ["data", "info", "ml-latest-small", "--quiet"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = _plain(res.output)
    assert "ratings │ 5 │" in out and "movies │ 5 │" in out and "rated movies │ 3 │" in out
    assert "users │ 3 │" in out
    assert "matched 2 of 5 movies" in out
    assert "rating histogram" in out


def test_info_tmdb_option_and_path(home, tmp_path):
    folder = write_csv_release(tmp_path / "other", "mine")
    tm = write_tmdb(tmp_path / "t.csv", [(9087, "President")])
    res = runner.invoke(app, ["data", "info", str(folder), "--tmdb", str(tm), "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "matched 1 of 5" in _plain(res.output)


def test_info_split_cold_share(home):
    from cinerec.data import load_dataset

    expected = splits_mod.make_split(load_dataset("ml-latest-small"), "temporal:0.2", 3)
    res = runner.invoke(
        app, ["data", "info", "ml-latest-small", "-q", "--split", "temporal:0.2", "--seed", "3"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "split 'temporal:0.2'" in res.output
    share = expected.cold_share()
    assert f"{share['cold_user_rows']:.2%}" in res.output and f"{share['cold_item_rows']:.2%}" in res.output
    assert f"{expected.test.n_ratings:,}" in res.output


def test_info_unknown_exits_2(home, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "info", "ml-25m"])
    assert e.value.code == 2
    err = _plain(capsys.readouterr().err)
    assert "cinerec data fetch ml-25m" in err


def test_fetch_uses_local_copy(home):
    res = runner.invoke(app, ["data", "fetch", "ml-latest-small"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "ml-latest-small.zip" in res.output
    quiet = runner.invoke(app, ["data", "fetch", "ml-latest-small", "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_synth_parses_counts(monkeypatch, tmp_path):
    import cinerec.data.synthetic as synthetic

    calls = []

    def fake_generate(out_dir, n_ratings, n_users, n_items, seed=0, progress=True):
        calls.append((out_dir, n_ratings, n_users, n_items, seed, progress))
        return out_dir

    monkeypatch.setattr(synthetic, "generate", fake_generate)
    out = tmp_path / "syn"
    res = runner.invoke(
        app,
        ["data", "synth", "--ratings", "25M", "--users", "162k", "--items", "62k", "--seed", "4", "--out", str(out), "-q"],
    )
    assert res.exit_code == 0, res.output
    assert calls == [(out, 25_000_000, 162_000, 62_000, 4, False)]


@pytest.mark.realdata
def test_info_real_ml_latest_small(data_home, monkeypatch, tmp_path):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["data", "info", "ml-latest-small", "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = _plain(res.output)
    for text in ("ratings │ 100,836", "users │ 610", "rated movies │ 9,724", "movies │ 9,742"):
        assert text in out
    assert re.search(r"TMDB join .* matched [\d,]+ of 9,742", out)
