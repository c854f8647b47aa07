"""`cinerec compress` end to end on a tiny saved model (PTQ needs no data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cinerec.cli import app
from cinerec.models.base import Recommender, create_model
from tests.conftest import make_ratings_dataset


def test_cli_compresses_and_loaded_model_predicts(tmp_path: Path) -> None:
    data = make_ratings_dataset(n_users=40, n_items=30, seed=5)
    cfg = {"n_factors": 8, "epochs": 2, "progress": False, "early_stopping_patience": None}
    create_model("mf-torch", cfg).fit(data).save(tmp_path / "m")
    res = CliRunner().invoke(app, ["compress", str(tmp_path / "m"), "--method", "int4", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "artifact on disk" in res.output
    model = Recommender.load(tmp_path / "c")
    assert model.compression["method"] == "int4"
    assert np.isfinite(model.predict(data.users[:10], data.items[:10])).all()


def test_cli_explains_missing_provenance(tmp_path: Path) -> None:
    data = make_ratings_dataset(n_users=40, n_items=30, seed=5)
    cfg = {"n_factors": 8, "epochs": 1, "progress": False, "early_stopping_patience": None}
    create_model("mf-torch", cfg).fit(data).save(tmp_path / "m")
    res = CliRunner().invoke(app, ["compress", str(tmp_path / "m"), "--method", "qat-int4", "--out", str(tmp_path / "c")])
    assert res.exit_code != 0
    assert "provenance" in str(res.exception)
