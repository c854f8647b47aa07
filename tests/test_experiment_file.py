"""Experiment files: validated, run end to end, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cinerec import artifacts, experiment_file
from cinerec.errors import ConfigError
from tests.cli.test_models_cli import _run

ROOT = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
output = "out"
[data]
name = "ml-latest-small"
[split]
spec = "random:0.9"
seed = 7
[evaluation]
k = 5
metrics = ["rmse", "ndcg@5"]
[[models]]
name = "bias"
[[models]]
name = "svd"
params = { n_factors = 8, epochs = %(epochs)d }
compress = ["int8"]
"""


def _write(folder: Path, text: str) -> Path:
    path = folder / "exp.toml"
    path.write_text(text)
    return path


def test_a_run_writes_every_artifact_and_a_second_run_reuses_them(data_home, tmp_path) -> None:
    path = _write(tmp_path, TINY % {"epochs": 2})
    first = experiment_file.run(path, progress=False)
    assert list(first["models"]) == ["bias", "svd", "svd+int8"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["models"].keys() == first["models"].keys() and saved["k"] == 5
    for label, entry in first["models"].items():
        assert artifacts.is_artifact(tmp_path / "out" / label)
        assert entry["metrics"]["rmse"] > 0 and "ndcg@5" in entry["metrics"]
    assert first["models"]["svd+int8"]["compress"] == "int8"
    assert artifacts.load_model(tmp_path / "out" / "svd+int8").compression
    stamp = (tmp_path / "out" / "svd" / "manifest.json").stat().st_mtime_ns

    again = experiment_file.run(path, progress=False)
    assert all(e["reused"] for e in again["models"].values())
    assert (tmp_path / "out" / "svd" / "manifest.json").stat().st_mtime_ns == stamp  # not retrained
    assert again["models"]["svd"]["metrics"] == first["models"]["svd"]["metrics"]

    changed = experiment_file.run(_write(tmp_path, TINY % {"epochs": 3}), progress=False)
    assert changed["models"]["bias"].get("reused") and not changed["models"]["svd"].get("reused")
    assert changed["models"]["svd"]["params"]["epochs"] == 3

    # a model whose artifact is gone (an interrupted run) is trained again, alone
    artifacts_dir = tmp_path / "out" / "bias"
    for f in artifacts_dir.iterdir():
        f.unlink()
    artifacts_dir.rmdir()
    resumed = experiment_file.run(path.parent / "exp.toml", progress=False)
    assert not resumed["models"]["bias"].get("reused") and resumed["models"]["svd"].get("reused")


@pytest.mark.parametrize(
    "text, match",
    [
        ('name = "x"\noutput = "o"\n[[models]]\nname = "nope"', "unknown model"),
        ('name = "x"\noutput = "o"\n[[models]]\nname = "svd"\nparams = { n_factors = -1 }', "n_factors"),
        ('name = "x"\noutput = "o"\n[[models]]\nname = "svd"\n[[models]]\nname = "svd"', "unique"),
        ('name = "x"\noutput = "o"\ncolour = 1\n[[models]]\nname = "svd"', "colour"),
        ('name = "x"\noutput = "o"\nmodels = []', "models"),
        ('name = "x" output', "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_clear_error_naming_it(tmp_path, text, match) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as e:
        experiment_file.load(path)
    assert str(path) in str(e.value)


def test_shipped_configs_validate_and_the_schema_file_is_current(capsys) -> None:
    for path in sorted((ROOT / "configs").glob("*.toml")):
        experiment_file.load(path)
    committed = json.loads((ROOT / "configs" / "schema.json").read_text())
    assert committed == experiment_file.schema(), "regenerate: cinerec run --schema > configs/schema.json"
    assert json.loads(_run(capsys, "run", "--schema")) == committed
