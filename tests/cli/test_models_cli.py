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
    assert len(recs["items"]) == 5 and recs["fallback"] is None
    assert all(r["title"] and 0 <= r["confidence"] <= 1 for r in recs["items"])

    unknown = json.loads(_run(capsys, "recommend", str(out), "--user", "999999", "--format", "json", "--quiet"))
    assert "unknown user" in unknown["fallback"]


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
    assert why["method"] == "neighbours" and why["because_you_rated_titles"]
    table = _run(capsys, "recommend", str(out), "--user", "1", "-k", "3", "--quiet")
    assert why["because_you_rated_titles"][0][:20] in table
    assert "most similar to it" in table
