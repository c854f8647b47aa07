"""Comparison tables: best value marked per column, formats, JSON keys, plot."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cinerec.evaluation import EvaluationError, Report, metric_keys
from cinerec.report import render, to_markdown, to_text
from cinerec.report.plots import bar_chart


def _report(name: str, **values: float | None) -> Report:
    metrics = dict.fromkeys(metric_keys(10))
    metrics |= {"n_test": 100, "n_test_cold_user": 5, "n_test_cold_item": 1, "n_rank_users": 9}
    metrics |= {key.replace("_at_", "@"): v for key, v in values.items()}
    return Report(
        model=name, config={}, dataset="tiny", split="random:0.2", seed=0, k=10,
        threshold=4.0, metrics=metrics,
    )  # fmt: skip


@pytest.fixture
def reports() -> list[Report]:
    return [
        _report("svd", rmse=0.87, ndcg_at_10=0.21, fit_s=3.0, r2=0.3),
        _report("bias", rmse=0.91, ndcg_at_10=0.05, fit_s=0.1, r2=0.25),
        _report("popular", rmse=None, ndcg_at_10=0.30, fit_s=0.1),
    ]


def test_rich_table_marks_best(reports):
    text = to_text(reports, cols=["rmse", "ndcg@10", "fit_s", "n_test"])
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("│")}
    assert "0.8700*" in lines["svd"] and "0.9100*" not in lines["bias"]  # lower rmse wins
    assert "0.3000*" in lines["popular"] and "0.2100*" not in lines["svd"]  # higher ndcg wins
    # A tie is marked on every tied row; missing values are "-", never marked.
    assert "0.1*" in lines["bias"] and "0.1*" in lines["popular"] and "3*" not in lines["svd"]
    assert "-" in lines["popular"]
    # Counts are descriptive: never marked.
    assert "100*" not in text


def test_markdown_bold_best(reports):
    md = to_markdown(reports, cols=["rmse", "r2"])
    assert md.splitlines()[0] == "| model | rmse | r2 |"
    assert "| svd | **0.8700** | **0.3000** |" in md
    assert "| popular | - | - |" in md


def test_json_keys_and_order(reports):
    data = json.loads(render(reports, "json"))
    assert [d["model"] for d in data] == ["svd", "bias", "popular"]
    lead = ["model", "rmse", "mae", "r2", "precision@10", "recall@10", "ndcg@10", "hit@10", "fit_s"]
    assert list(data[0])[: len(lead)] == lead
    assert set(metric_keys(10)) <= set(data[0])
    assert data[2]["rmse"] is None and data[0]["ndcg@10"] == 0.21


def test_csv_round_trip(reports):
    rows = list(csv.DictReader(io.StringIO(render(reports, "csv"))))
    assert len(rows) == 3 and rows[0]["model"] == "svd"
    assert float(rows[1]["rmse"]) == 0.91 and rows[2]["rmse"] == ""


def test_render_errors(reports):
    with pytest.raises(EvaluationError, match="unknown format"):
        render(reports, "xml")
    with pytest.raises(EvaluationError, match="no reports"):
        render([], "json")


def test_bar_chart(reports, tmp_path):
    path = bar_chart(reports, "ndcg@10", tmp_path / "out" / "ndcg.png")
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    with pytest.raises(EvaluationError, match="no report has metric"):
        bar_chart(reports, "auc", tmp_path / "x.png")
