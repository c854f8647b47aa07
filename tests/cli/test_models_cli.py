"""`cinerec train | evaluate | recommend | compare | models` on real data, end to end."""

from __future__ import annotations

import json

import pytest

from cinerec.cli import main


def _run(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    return out.out


@pytest.mark.realdata
def test_train_evaluate_recommend_round_trip(data_home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    out = tmp_path / "bias"
    trained = json.loads(
        _run(capsys, "train", "bias", "--data", "ml-latest-small", "--split", "random:0.9",
             "--out", str(out), "--format", "json", "--quiet")
    )
    # `evaluate` rebuilds the same test part from the manifest: same numbers
    evaluated = json.loads(_run(capsys, "evaluate", str(out), "--format", "json", "--quiet"))
    assert evaluated[0]["rmse"] == pytest.approx(trained[0]["rmse"], abs=1e-6)
    assert 0.8 < evaluated[0]["rmse"] < 0.95

    recs = json.loads(_run(capsys, "recommend", str(out), "--user", "1", "-k", "5", "--format", "json", "--quiet"))
    assert len(recs["items"]) == 5 and recs["fallback"] is None and recs["basis"] == "model"
    assert all(r["title"] and 0 <= r["confidence"] <= 1 for r in recs["items"])
    assert all(r["explanation"]["kind"] == "score_breakdown" for r in recs["items"])

    unknown = json.loads(_run(capsys, "recommend", str(out), "--user", "999999", "--format", "json", "--quiet"))
    assert "unknown user" in unknown["fallback"]["reason"] and unknown["basis"] == "fallback"


@pytest.mark.realdata
def test_compare_json_has_the_documented_keys(data_home, capsys, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    rows = json.loads(
        _run(capsys, "compare", "mean", "bias", "--data", "ml-latest-small", "--split", "random:0.9",
             "--format", "json", "--quiet")
    )
    assert [r["model"] for r in rows] == ["mean", "bias"]
    for key in ("rmse", "mae", "r2", "precision@10", "recall@10", "ndcg@10", "hit@10", "fit_s"):
        assert all(key in r for r in rows)
    assert rows[1]["rmse"] < rows[0]["rmse"]


def test_bad_input_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "no-such-model", "--data", "/nonexistent/path"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


@pytest.mark.realdata
def test_compare_significance_reports_a_paired_test(data_home, capsys, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    out = _run(capsys, "compare", "mean", "bias", "--data", "ml-latest-small", "--significance", "--quiet")
    assert "paired significance vs mean" in out
    # bias beats the global mean by far more than sampling noise: the CI is below zero
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("bias") and "[" in line)
    low_high = row.split("[")[1].split("]")[0] if "]" in row else row.split("[")[1]
    assert float(low_high.split(",")[0]) < 0


@pytest.mark.realdata
def test_item_knn_recommend_names_the_rated_movies_behind_each_pick(data_home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "knn"
    _run(capsys, "train", "item-knn", "--data", "ml-latest-small", "--split", "user-temporal:0.8",
         "--out", str(out), "--format", "json", "--quiet")
    recs = json.loads(_run(capsys, "recommend", str(out), "--user", "1", "-k", "3", "--format", "json", "--quiet"))
    why = recs["items"][0]["explanation"]
    assert why["kind"] == "because_you_rated" and why["items"] and why["items"][0]["title"]
    table = _run(capsys, "recommend", str(out), "--user", "1", "-k", "3", "--quiet")
    assert why["items"][0]["title"][:20] in table
    assert "the movies you rated that carried it" in table


@pytest.mark.realdata
def test_recommend_needs_no_data_home(data_home, tmp_path, capsys, monkeypatch):
    """Train with the real data, then recommend with an EMPTY data home and cache:
    the artifact alone answers, for a known user and for a new visitor's history."""
    monkeypatch.setenv("CINEREC_DATA", str(data_home))
    out = tmp_path / "svd"
    _run(capsys, "train", "svd", "--data", "ml-latest-small", "--split", "random:0.9", "--out", str(out),
         "--set", "n_factors=20", "--set", "epochs=5", "--no-evaluate", "--quiet")
    empty = tmp_path / "empty-home"
    empty.mkdir()
    monkeypatch.setenv("CINEREC_DATA", str(empty))
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "empty-cache"))
    known = json.loads(_run(capsys, "recommend", str(out), "--user", "1", "-k", "5", "--format", "json", "--quiet"))
    assert known["user"] == 1 and len(known["items"]) == 5 and all(r["title"] for r in known["items"])
    # Toy Story (1), Jumanji (2) and Heat (6), loved: a visitor the model never saw
    new = json.loads(_run(capsys, "recommend", str(out), "--history", "1:5,2:4.5,6:5", "-k", "5",
                          "--format", "json", "--quiet"))
    assert new["basis"] == "fold-in" and new["user"] is None
    assert not {r["item_id"] for r in new["items"]} & {1, 2, 6}
    table = _run(capsys, "recommend", str(out), "--history", "1:5,2:4.5,6:5", "-k", "3", "--quiet")
    assert "taste match" in table and "a new visitor" in table
    similar = json.loads(_run(capsys, "similar", str(out), "--item", "1", "-k", "3", "--format", "json", "--quiet"))
    assert len(similar["items"]) == 3 and 1 not in {r["item_id"] for r in similar["items"]}
    assert not list(empty.iterdir())  # nothing was read from or written to the data home


@pytest.mark.parametrize(
    ("args", "match"),
    [(["--seed", "-5"], "--seed must be >= 0"), (["--set", "lr=NaN"], "finite"),
     (["--set", "n_factors=x"], "n_factors"), (["-k", "0"], "k must be >= 1")],
)
def test_bad_values_fail_before_any_work(args, match, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "svd", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and match in err and "Traceback" not in err


def test_config_file_must_be_an_object(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text("[1, 2]")
    with pytest.raises(SystemExit) as exc:
        main(["train", "svd", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "JSON object" in capsys.readouterr().err


def test_out_is_checked_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "mine.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    for out in (".", "mine.txt"):
        with pytest.raises(SystemExit) as exc:
            main(["train", "svd", "--data", "/nonexistent", "--out", out])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "/nonexistent" not in err  # refused before the data
    assert (tmp_path / "mine.txt").read_text() == "mine"


def test_user_ids_that_cannot_be_ids(tmp_path, capsys):
    from cinerec import artifacts
    from cinerec.models.registry import create_model
    from tests.conftest import make_ratings_dataset

    model = create_model("bias").fit(make_ratings_dataset())
    artifacts.save_model(model, tmp_path / "b")
    for user, match in (("2^70", "not a user id"), (str(2**70), "<= "), ("abc", "not a user id")):
        with pytest.raises(SystemExit) as exc:
            main(["recommend", str(tmp_path / "b"), "--user", user])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and match in err and "Traceback" not in err
    for lam in ("nan", "inf", "1e308"):
        with pytest.raises(SystemExit) as exc:
            main(["recommend", str(tmp_path / "b"), "--user", "1", "--risk-aversion", lam])
        assert exc.value.code == 2 and "risk_aversion" in capsys.readouterr().err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception) as exc:  # noqa: PT011 - any CinerecError
        main(["train", "no-such-model", "--data", "/nonexistent", "--debug"])
    assert type(exc.value).__name__ == "UnknownModel"
