"""`cinerec compress` end to end on a tiny saved model (PTQ needs no data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cinerec.artifacts import artifact_bytes, load_model, save_model
from cinerec.cli import app
from cinerec.models import create_model
from tests.conftest import make_ratings_dataset

QUIET = {"progress": False}


def test_cli_compresses_and_loaded_model_predicts(tmp_path: Path) -> None:
    data = make_ratings_dataset(n_users=40, n_items=30, seed=5)
    cfg = {"n_factors": 8, "epochs": 2, "early_stopping_patience": None}
    save_model(create_model("mf-torch", cfg).fit(data, options=QUIET), tmp_path / "m")
    res = CliRunner().invoke(app, ["compress", str(tmp_path / "m"), "--method", "int4", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "artifact on disk" in res.output
    model = load_model(tmp_path / "c")
    assert model.compression["method"] == "int4"
    assert np.isfinite(model.predict(data.users[:10], data.items[:10])).all()


@pytest.mark.parametrize(("min_rows", "user_kind"), [(None, "quantized"), ("0", "rq")])
def test_cli_rq_min_rows_decides_which_tables_get_codebooks(tmp_path: Path, min_rows, user_kind) -> None:
    data = make_ratings_dataset(n_users=40, n_items=30, seed=5)
    cfg = {"n_factors": 8, "epochs": 1, "early_stopping_patience": None}
    save_model(create_model("mf-torch", cfg).fit(data, options=QUIET), tmp_path / "m")
    args = ["compress", str(tmp_path / "m"), "--method", "rq", "--centroids", "8", "--stages", "2",
            "--epochs", "0", "--out", str(tmp_path / "c")]
    res = CliRunner().invoke(app, args + (["--min-rows", min_rows] if min_rows else []))
    assert res.exit_code == 0, res.output
    tables = load_model(tmp_path / "c").compression["tables"]
    # default min_rows = 8 rows per centroid x 8 centroids = 64 > 40 users, 30 items
    assert tables["user_emb"]["kind"] == tables["item_emb"]["kind"] == user_kind


def test_cli_explains_missing_provenance(tmp_path: Path) -> None:
    data = make_ratings_dataset(n_users=40, n_items=30, seed=5)
    cfg = {"n_factors": 8, "epochs": 1, "early_stopping_patience": None}
    save_model(create_model("mf-torch", cfg).fit(data, options=QUIET), tmp_path / "m")
    res = CliRunner().invoke(app, ["compress", str(tmp_path / "m"), "--method", "qat-int4", "--out", str(tmp_path / "c")])
    assert res.exit_code != 0
    assert "provenance" in str(res.exception)


# ---- end to end on real data (ml-latest-small, the artifact's provenance) --------------


def _json(output: str):
    """The JSON document in a CLI output (progress lines, if any, come before it)."""
    import json

    start = min(i for i in (output.find("{"), output.find("[")) if i >= 0)
    return json.loads(output[start:])


def _rmse(output: str) -> float:
    doc = _json(output)
    report = doc[0] if isinstance(doc, list) else doc
    metrics = report.get("metrics", report)
    return float(metrics["rmse"])


@pytest.fixture(scope="module")
def mf_artifact(data_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small mf-torch trained by `cinerec train` (2 epochs) with its provenance."""
    out = tmp_path_factory.mktemp("cli-real") / "mf"
    args = ["train", "mf-torch", "--split", "random:0.9", "--seed", "42", "--out", str(out),
            "--set", "epochs=2", "--set", "n_factors=16", "--set", "batch_size=1024",
            "--no-evaluate", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return out


def test_cli_int8_artifact_is_smaller_and_evaluates_and_recommends(mf_artifact: Path, tmp_path: Path) -> None:

    runner = CliRunner()
    out = tmp_path / "int8"
    res = runner.invoke(app, ["compress", str(mf_artifact), "--method", "int8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    # The artifact shrinks by what the tables save: per row 4d bytes -> d codes + 4 (fp16
    # scale and offset); the rest of the artifact (biases, train statistics) is unchanged.
    base = load_model(mf_artifact)
    rows, d = base.n_users_ + base.n_items_, 16
    saved = artifact_bytes(mf_artifact) - artifact_bytes(out)
    assert saved == pytest.approx(rows * (4 * d - (d + 4)), rel=0.02)
    ref = runner.invoke(app, ["evaluate", str(mf_artifact), "--format", "json", "--quiet"])
    got = runner.invoke(app, ["evaluate", str(out), "--format", "json", "--quiet"])
    assert ref.exit_code == 0 and got.exit_code == 0, got.output
    assert abs(_rmse(got.output) - _rmse(ref.output)) < 0.005
    rec = runner.invoke(app, ["recommend", str(out), "--user", "1", "--format", "json", "--quiet"])
    assert rec.exit_code == 0, rec.output
    assert len(_json(rec.output)["items"]) == 10


def test_cli_qat_rebuilds_training_data_from_provenance(mf_artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "qat"
    args = ["compress", str(mf_artifact), "--method", "qat-int4", "--epochs", "1", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    model = load_model(out)
    assert model.compression["method"] == "qat-int4"
    assert model.provenance["split"] == "random:0.9" and model.provenance["seed"] == 42
