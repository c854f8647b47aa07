"""Paper reproductions: cells validated, compared, measured on a tiny generated run."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from cinerec import reproduce
from cinerec.errors import ConfigError
from cinerec.evaluation.metrics import (
    mean_metrics,
    normalised_rating_metrics,
    own_items_topk,
    ranking_metrics,
    relevance_matrix,
    topk_from_scores,
)
from cinerec.evaluation.report import metric_keys
from cinerec.experiment_file import ExperimentFile, PaperCell
from tests.cli.test_models_cli import _run


def _cell(**kw) -> PaperCell:
    base = {"table": "T", "row": "r", "metric": "RMSE", "model": "svd", "key": "rmse", "reason": "why"}
    return PaperCell.model_validate(base | kw)


# ---- comparing one cell ----------------------------------------------------------------
def test_a_number_within_tolerance_agrees_and_hides_the_reason() -> None:
    row = reproduce.compare_cell(_cell(claimed=0.90), 0.905)
    assert row.verdict == "agrees" and row.reason == "" and row.difference == pytest.approx(0.005)
    row = reproduce.compare_cell(_cell(claimed=0.90), 0.95)
    assert row.verdict == "differs" and row.reason == "why" and row.difference == pytest.approx(0.05)
    assert reproduce.fmt_difference(row) == "+0.0500 (+6%)"
    loose = reproduce.compare_cell(_cell(claimed=0.90, tolerance=0.1), 0.95)
    assert loose.verdict == "agrees"


def test_an_order_claim_is_checked_against_the_other_model() -> None:
    lower = _cell(claimed="<bias")
    assert reproduce.order_reference(lower) == "bias"
    assert reproduce.compare_cell(lower, 0.85, reference=0.90).verdict == "holds"
    failed = reproduce.compare_cell(lower, 0.95, reference=0.90)
    assert failed.verdict == "fails" and failed.reason == "why"
    assert reproduce.fmt_difference(failed) == "+0.0500 vs bias"
    higher = _cell(claimed="> bias", key="ndcg@10")
    assert reproduce.compare_cell(higher, 0.2, reference=0.1).verdict == "holds"
    assert reproduce.compare_cell(higher, 0.2, reference=None).verdict == "missing"


def test_not_run_missing_and_text_claims() -> None:
    gone = PaperCell(table="T", row="model 3", metric="R²", claimed="0.48", not_run="no IMDb files")
    row = reproduce.compare_cell(gone, None)
    assert (row.verdict, row.reason, row.measured) == ("not run", "no IMDb files", None)
    assert reproduce.compare_cell(_cell(claimed=0.9), None).verdict == "missing"
    assert reproduce.compare_cell(_cell(claimed=0.9), float("nan")).verdict == "missing"
    text = reproduce.compare_cell(_cell(claimed="the baseline"), 0.8)
    assert text.verdict == "shown" and text.difference is None


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"not_run": "x"}, "exactly one of key and not_run"),
        ({"key": None}, "exactly one of key and not_run"),
        ({"model": None}, "needs a model label"),
    ],
)
def test_a_cell_names_what_measures_it_or_why_not(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        _cell(**kw)


def test_a_cell_without_model_is_only_allowed_for_data_measurements() -> None:
    assert _cell(model=None, key="variance:tier high: sigma").model is None


def _experiment(cells: list[dict]) -> dict:
    return {"name": "x", "output": "o", "models": [{"name": "bias"}, {"name": "svd", "compress": ["int8"]}],
            "paper": {"id": "paper-x", "title": "t", "cells": cells}}


def test_cells_must_name_models_of_the_file() -> None:
    ok = {"table": "T", "row": "r", "metric": "m", "model": "svd+int8", "key": "rmse", "claimed": "<bias"}
    assert ExperimentFile.model_validate(_experiment([ok])).paper.cells[0].model == "svd+int8"
    with pytest.raises(ValueError, match="names \\['ease'\\]"):
        ExperimentFile.model_validate(_experiment([ok | {"model": "ease"}]))
    with pytest.raises(ValueError, match="names \\['mean'\\]"):
        ExperimentFile.model_validate(_experiment([ok | {"claimed": ">mean"}]))


# ---- the pure metrics it adds --------------------------------------------------------------
def test_normalised_metrics_by_hand() -> None:
    m = normalised_rating_metrics(np.array([0.5, 5.0, 4.0, 2.0]), np.array([1.4, 4.1, 3.0, 3.8]), (0.5, 5.0))
    assert m["n_mae"] == pytest.approx((0.9 + 0.9 + 1.0 + 1.8) / 4 / 4.5)
    assert m["n_rmse"] == pytest.approx(np.sqrt(m["n_mse"]))
    # liked = >= 3.5: truth liked rows 1, 2; predicted liked rows 1, 3 -> one hit of two each
    assert (m["precision"], m["recall"]) == (0.5, 0.5)
    with pytest.raises(Exception, match="lo < hi"):
        normalised_rating_metrics(np.ones(2), np.ones(2), (5.0, 5.0))


def test_own_items_topk_orders_each_users_own_rows() -> None:
    users = np.array([3, 1, 3, 1, 3, 3])
    items = np.array([10, 11, 12, 13, 14, 15])
    scores = np.array([0.1, 0.5, 0.9, 0.7, 0.9, 0.3])
    u, top = own_items_topk(users, items, scores, k=3)
    assert u.tolist() == [1, 3]
    assert top.tolist() == [[13, 11, -1], [12, 14, 15]]  # ties to the lower item


def test_own_items_protocol_inflates_a_random_scorer() -> None:
    from cinerec.testing.data import make_ratings_dataset

    ds = make_ratings_dataset(n_users=100, n_items=300, density=0.08, seed=2)
    rng = np.random.default_rng(0)
    test = ds.subset(rng.random(ds.n_ratings) < 0.2)
    rel = relevance_matrix(test.users, test.items, test.ratings, ds.n_users, ds.n_items)
    users, top = own_items_topk(test.users, test.items, rng.random(test.n_ratings), 10)
    keep = np.diff(rel.indptr)[users] > 0
    own = mean_metrics(ranking_metrics(top[keep], rel[users[keep]], 10))
    scores = rng.random((users[keep].size, ds.n_items)).astype(np.float32)
    full = mean_metrics(ranking_metrics(topk_from_scores(scores, 10), rel[users[keep]], 10))
    assert own["recall"] > 0.9 and own["ndcg"] > 0.6
    assert full["ndcg"] < 0.1


# ---- the shipped papers ----------------------------------------------------------------------
@pytest.mark.parametrize("paper", [f"paper-00{n}" for n in range(5)])
def test_every_paper_file_loads_and_names_known_keys(paper) -> None:
    exp, spec, path = reproduce.load_paper(paper)
    assert spec.id == paper == path.stem and exp.name == paper
    raw = tomllib.loads(path.read_text())
    assert raw["paper"]["id"] == paper
    prefixes = ("norm:", "liked:", "own:", "variance:")
    known = set(metric_keys(exp.evaluation.k)) | {"s_per_epoch", "epochs", "emb:ratio", "emb:mb", "ml25m:gb"}
    for cell in spec.cells:
        assert cell.key is None or cell.key in known or cell.key.startswith(prefixes), cell
        assert cell.claimed is not None or "not in the paper" in cell.row + cell.reason, cell


def test_paper_004_reports_models_3_to_5_as_not_run() -> None:
    _, spec, _ = reproduce.load_paper("paper-004")
    gone = [c.row for c in spec.cells if c.not_run]
    assert gone == ["model 3", "model 4", "model 5"]


def test_unknown_paper_names_the_known_ones(tmp_path) -> None:
    with pytest.raises(ConfigError, match="paper-000"):
        reproduce.paper_path("paper-999")
    with pytest.raises(ConfigError, match="does not exist"):
        reproduce.paper_path(tmp_path / "none.toml")
    plain = tmp_path / "plain.toml"
    plain.write_text('name = "p"\noutput = "o"\n[[models]]\nname = "bias"\n')
    with pytest.raises(ConfigError, match="no \\[paper\\] table"):
        reproduce.load_paper(plain)


# ---- end to end on generated data -------------------------------------------------------------
TINY = """
name = "tiny-paper"
output = "never-used"
[data]
name = "%(data)s"
[split]
spec = "random:0.8"
seed = 3
[evaluation]
k = 5
[[models]]
name = "bias"
[[models]]
name = "svd"
params = { n_factors = 8, epochs = 5 }
compress = ["int8"]
[paper]
id = "paper-tiny"
title = "a tiny paper"
notes = ["generated data"]
[[paper.cells]]
table = "Results"
row = "svd"
metric = "RMSE"
claimed = 0.10
model = "svd"
key = "rmse"
reason = "an implausible claim"
[[paper.cells]]
table = "Results"
row = "svd beats bias"
metric = "RMSE"
claimed = "<bias"
model = "svd"
key = "rmse"
reason = "svd loses here"
[[paper.cells]]
table = "Results"
row = "svd"
metric = "NDCG@5 (own)"
claimed = 1.0
model = "svd"
key = "own:ndcg@5"
[[paper.cells]]
table = "Results"
row = "svd"
metric = "RMSE (normalised)"
claimed = 0.2
model = "svd"
key = "norm:rmse"
[[paper.cells]]
table = "Compression"
row = "svd INT8"
metric = "ratio"
claimed = 4.0
model = "svd+int8"
key = "emb:ratio"
[[paper.cells]]
table = "Compression"
row = "svd INT8"
metric = "GB at ML-25M"
claimed = 3.15
model = "svd+int8"
key = "ml25m:gb"
[[paper.cells]]
table = "Compression"
row = "svd FP32"
metric = "GB at ML-25M"
claimed = 12.58
model = "svd"
key = "ml25m:gb"
[[paper.cells]]
table = "Variance"
row = "high tier"
metric = "sigma"
claimed = 0.89
key = "variance:tier high: sigma"
[[paper.cells]]
table = "Results"
row = "model 3"
metric = "R²"
claimed = "0.48"
not_run = "no IMDb files"
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from cinerec.data.synthetic.output import generate

    root = tmp_path_factory.mktemp("repro")
    data = generate(root / "synth", n_ratings=4000, n_users=80, n_items=150, seed=1, progress=False)
    path = root / "tiny.toml"
    path.write_text(TINY % {"data": data})
    rep = reproduce.reproduce(path, out=root / "run", progress=False)
    return rep, path, root


def test_a_reproduction_measures_every_cell(tiny_run) -> None:
    rep, _, root = tiny_run
    rows = {(r.table, r.row, r.metric): r for r in rep.rows}
    assert len(rep.rows) == 9
    rmse = rows["Results", "svd", "RMSE"]
    assert rmse.verdict == "differs" and rmse.reason == "an implausible claim" and 0.3 < rmse.measured < 2
    assert rows["Results", "svd beats bias", "RMSE"].verdict in ("holds", "fails")
    own = rows["Results", "svd", "NDCG@5 (own)"].measured
    assert 0 < own <= 1
    assert 0 < rows["Results", "svd", "RMSE (normalised)"].measured == pytest.approx(rmse.measured / 4.5, rel=1e-4)
    assert rows["Compression", "svd INT8", "ratio"].measured == pytest.approx(32 / 12)  # 8 codes + fp16 scale, offset
    fp32_gb = (162_541 + 62_423) * 8 * 4 / 1e9
    assert rows["Compression", "svd FP32", "GB at ML-25M"].measured == pytest.approx(fp32_gb)
    assert rows["Compression", "svd INT8", "GB at ML-25M"].measured == pytest.approx(
        (162_541 + 62_423) * (8 + 4) / 1e9, rel=0.01)
    assert 0 < rows["Variance", "high tier", "sigma"].measured < 2.5
    assert rows["Results", "model 3", "R²"].verdict == "not run"
    md = (root / "run" / "reproduction.md").read_text()
    assert "| Results | model 3 | R² | 0.48 | - | - | not run | no IMDb files |" in md
    assert "- generated data" in md
    saved = json.loads((root / "run" / "reproduction.json").read_text())
    assert saved["paper"] == "paper-tiny" and len(saved["rows"]) == 9
    assert (root / "run" / "results.json").is_file() and not (root / "never-used").exists()


def test_a_second_reproduction_reads_the_models_back(tiny_run) -> None:
    rep, path, root = tiny_run
    again = reproduce.reproduce(path, out=root / "run", progress=False)
    assert again.setup["reused"] == ["bias", "svd", "svd+int8"]
    assert [r.measured for r in again.rows] == [r.measured for r in rep.rows]


def test_cli_lists_and_reproduces(tiny_run, capsys) -> None:
    _, path, root = tiny_run
    listed = _run(capsys, "reproduce", "--list")
    assert [line.split()[0] for line in listed.splitlines()] == [f"paper-00{n}" for n in range(5)]
    md = _run(capsys, "reproduce", str(path), "--out", str(root / "run"), "--format", "md", "--quiet")
    assert md.startswith("# paper-tiny: a tiny paper") and "| Variance | high tier | sigma | 0.8900 |" in md
    table = _run(capsys, "reproduce", str(path), "--out", str(root / "run"), "--quiet")
    assert "not run" in table and "reproduction.md" in table


def test_own_items_metrics_of_a_ranking_model_use_its_catalogue_scores() -> None:
    """A ranking-only model (ease) is ranked by its catalogue scores of each user's own
    test movies: the same value as scoring user by user."""
    from cinerec.data.splits import make_split
    from cinerec.evaluation.metrics import own_items_topk as topk
    from cinerec.models.registry import create_model
    from cinerec.reproduce import own_items_metrics
    from tests.conftest import make_ratings_dataset

    split = make_split(make_ratings_dataset(n_users=40, n_items=30, density=0.4, seed=5), "random:0.7", seed=1)
    model = create_model("ease", reg=5.0).fit(split.train, options={"progress": False})
    test = split.test
    by_user = np.array([model.score(np.array([u]))[0, i] for u, i in zip(test.users, test.items, strict=True)])
    rel = relevance_matrix(test.users, test.items, test.ratings, split.train.n_users, split.train.n_items, 4.0)
    users, top = topk(test.users, test.items, by_user, 5)
    keep = np.diff(rel.indptr)[users] > 0
    want = mean_metrics(ranking_metrics(top[keep], rel[users[keep]], 5))["ndcg"]
    assert own_items_metrics(model, split, "ndcg@5") == pytest.approx(want)
