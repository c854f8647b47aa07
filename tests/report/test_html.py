"""`cinerec report RUN_DIR`: one self-contained page, opened in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cinerec import experiment_file
from cinerec.errors import ConfigError
from cinerec.report import evidence
from cinerec.report.html import gather_evidence, render, run_report
from tests.browser import chrome, need_browser, screenshot, severe
from tests.cli.test_models_cli import _run

EXPERIMENT = """
name = "report-test"
output = "run"
[data]
name = "ml-latest-small"
[[models]]
name = "bias"
[[models]]
name = "svd"
params = { n_factors = 8, epochs = 3 }
compress = ["int8"]
[[models]]
name = "mf-torch"
params = { epochs = 2, n_factors = 8 }
"""


@pytest.fixture(scope="module")
def run_dir(data_home, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    (folder / "exp.toml").write_text(EXPERIMENT)
    experiment_file.run(folder / "exp.toml", progress=False)
    return folder / "run"


def test_the_page_holds_every_model_and_figure_and_needs_nothing_else(run_dir, capsys) -> None:
    out = Path(_run(capsys, "report", str(run_dir)).strip())
    page = out.read_text()
    results = json.loads((run_dir / "results.json").read_text())
    for label in ("bias", "svd", "svd+int8", "mf-torch"):
        assert f"<td>{label}</td>" in page
    rmse = results["models"]["mf-torch"]["metrics"]["rmse"]
    assert f"{rmse:.4f}" in page
    for fig in ("bars-rmse", "bars-ndcg@10", "radar", "losses", "tradeoff", "tiers_genres", "sigma_vs_mean"):
        assert f"data-testid='figure-{fig}'" in page, fig
    assert results["models"]["mf-torch"]["history"]["epoch"] == [1, 2]  # the loss curve's data
    # self-contained: every image inline, nothing fetched
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)
    assert page.count("data:image/png;base64,") == 7


def test_significance_markers_come_from_paired_tests_against_the_best(run_dir) -> None:
    """3-epoch svd and 2-epoch mf-torch are far from bias on 10,000 test rows: their RMSE
    differs from the best model's (bias) beyond chance; the best model is never starred."""
    results = json.loads((run_dir / "results.json").read_text())
    ctx, why = evidence.load_run_data(results)
    assert why is None
    sig = evidence.significance(results, run_dir, ctx)
    rmse = {label: e["metrics"]["rmse"] for label, e in results["models"].items()}
    assert sig.best["rmse"] == min(rmse, key=rmse.get) == "bias"
    assert "rmse" not in sig.p["bias"]
    assert sig.p["svd"]["rmse"] < 0.05 and sig.p["mf-torch"]["rmse"] < 0.05
    page = render(results, gather_evidence(results, run_dir))
    row = re.search(r"<tr><td>svd</td>(.*?)</tr>", page).group(1)
    assert "data-testid='sig'" in row
    bias_row = re.search(r"<tr><td>bias</td>(.*?)</tr>", page).group(1)
    first_cell = bias_row.split("</td>")[0]  # rmse is the first metric column
    assert "data-testid='sig'" not in first_cell


def test_a_run_whose_data_changed_says_so_instead_of_marking(run_dir) -> None:
    results = json.loads((run_dir / "results.json").read_text()) | {"fingerprint": "not-this-data"}
    ctx, why = evidence.load_run_data(results)
    assert ctx is None and "differs from the run's" in why
    page = render(results, gather_evidence(results, run_dir))
    assert "data-testid='evidence-note'" in page and "data-testid='sig'" not in page
    assert page.count("data:image/png;base64,") == 5


def test_the_page_renders_in_chromium_without_console_errors(run_dir, tmp_path) -> None:
    need_browser()
    page = run_report(run_dir, tmp_path / "report.html")
    with chrome(tmp_path / "profile", window="1280,3200") as d:
        d.get(page.as_uri())
        images = d.execute_script(
            "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) == 7 and all(c and w > 200 and h > 150 for c, w, h in images), images
        rows = d.execute_script("return document.querySelectorAll('[data-testid=metrics] tr').length")
        assert rows == 1 + 4
        screenshot(d, tmp_path, "cinerec-report.png")
        assert not severe(d), "the browser console has errors"


def test_a_folder_without_results_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cinerec run"):
        run_report(tmp_path)
