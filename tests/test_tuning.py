"""`cinerec tune`: Optuna over the declared spaces, on a validation part of train only."""

from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna")

from cinerec import experiment, tuning  # noqa: E402
from cinerec.errors import ConfigError  # noqa: E402
from cinerec.models.registry import available_models, model_class  # noqa: E402
from cinerec.models.search import check_space  # noqa: E402
from tests.cli.test_models_cli import _run  # noqa: E402  (the CLI runner the CLI tests use)


@pytest.fixture(scope="module")
def ctx(data_home):
    return experiment.load_context("ml-latest-small", "random:0.9", 42, progress=False)


def _pairs(ds) -> set[tuple[int, int]]:
    return set(zip(ds.users.tolist(), ds.items.tolist(), strict=True))


def test_every_search_space_names_real_config_fields() -> None:
    spaces = {name: check_space(model_class(name)) for name in available_models()}
    assert {n for n, s in spaces.items() if s} >= {"svd", "als", "ials", "ease", "item-knn", "mf-torch", "ncf"}


def test_validation_is_carved_from_train_never_from_test(ctx) -> None:
    parts = tuning.validation_split(ctx)
    fit, valid = _pairs(parts.train), _pairs(parts.test)
    assert fit and valid and not fit & valid
    assert fit | valid == _pairs(ctx.split.train)
    assert not (fit | valid) & _pairs(ctx.split.test)
    assert 0.08 < len(valid) / (len(fit) + len(valid)) < 0.12  # random:0.9 of train


def test_tune_writes_a_config_train_takes_and_resumes(ctx, tmp_path, capsys) -> None:
    db, best = tmp_path / "svd.db", tmp_path / "svd.json"
    args = ["tune", "svd", "--data", "ml-latest-small", "--set", "epochs=3", "--set", "n_factors=8",
            "--storage", str(db), "--out", str(best), "--quiet"]
    first = json.loads(_run(capsys, *args, "--trials", "3").strip().splitlines()[-1])
    assert first["complete"] == 3 and first["trials"] == 3
    assert json.loads(best.read_text()) == first["config"] and first["config"]["epochs"] == 3
    # the stored study continues: two more trials, not five
    second = json.loads(_run(capsys, *args, "--trials", "5").strip().splitlines()[-1])
    assert second["trials"] == 5 and second["best_value"] <= first["best_value"]
    values = [t["value"] for t in second["history"]]
    assert second["best_value"] == pytest.approx(min(values))
    # the file is what `cinerec train --config` takes
    _run(capsys, "train", "svd", "--data", "ml-latest-small", "--config", str(best), "--no-evaluate",
         "--out", str(tmp_path / "run"), "--quiet")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert {k: saved[k] for k in second["config"]} == second["config"]


def test_the_first_trial_is_the_defaults_so_tuning_never_loses_to_them(ctx, tmp_path) -> None:
    res = tuning.tune("bias", ctx, trials=3, metric="rmse", storage=tmp_path / "b.db", progress=False)
    first = res.history[0]
    assert first["params"] == {"reg_u": 15.0, "reg_i": 10.0}  # Bias.Config's defaults
    assert res.best_value <= first["value"]
    # a default outside the declared range is not forced in (the space is the contract)
    cls = model_class("bias")
    space = check_space(cls)
    assert tuning.default_point(cls, space, {}) == {"reg_u": 15.0, "reg_i": 10.0}
    assert tuning.default_point(cls, space, {"reg_u": 80.0}) == {}
    assert tuning.default_point(cls, {"reg_i": space["reg_i"]}, {"reg_u": 80.0}) == {"reg_i": 10.0}


def test_member_weights_are_searched_as_one_list_field(ctx, tmp_path) -> None:
    fixed = {"members": [{"name": "bias"}, {"name": "popular"}, {"name": "ease", "params": {"reg": 200.0}}]}
    res = tuning.tune("rank-blend", ctx, trials=3, metric="ndcg@10", storage=tmp_path / "rb.db",
                      fixed=fixed, progress=False)
    w = res.config["weights"]
    assert len(w) == 3 and w[0] == 1.0 and all(0.0 <= x <= 1.5 for x in w[1:])
    assert res.history[0]["params"] == {"weights[1]": 1.0, "weights[2]": 1.0}  # the defaults: one each
    model_class("rank-blend")(res.config)  # the written config is one `train --config` takes


def test_torch_trials_report_every_epoch(ctx, tmp_path) -> None:
    res = tuning.tune("mf-torch", ctx, trials=3, metric="rmse", storage=tmp_path / "mf.db",
                      fixed={"epochs": 3, "n_factors": 8}, progress=False)
    study = optuna.load_study(study_name=f"mf-torch-ml-latest-small-{ctx.split.spec}-rmse",
                              storage=f"sqlite:///{tmp_path / 'mf.db'}")
    assert len(study.trials) == 3 and res.complete + res.pruned == 3
    for t in study.trials:
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
        assert t.intermediate_values  # one report per epoch (pruning needs them)


def test_a_trial_worse_than_the_median_is_pruned_mid_training() -> None:
    torch = pytest.importorskip("torch")
    from cinerec.train.callbacks import TrainState

    study = optuna.create_study(direction="minimize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for epoch, loss in enumerate([0.9, 0.8, 0.7], start=1):
        good.report(loss, epoch)
    study.tell(good, 0.7)
    net = torch.nn.Linear(2, 1)
    state = TrainState(module=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), scheduler=None,
                       generator=torch.Generator(), epochs=3)
    bad = study.ask()
    callback = tuning._PruneOnEpoch(bad, "minimize")
    state.epoch = 1
    state.history.train_loss.append(2.0)
    state.history.valid_loss.append(1.5)  # worse than the good trial's 0.9 at epoch 1
    with pytest.raises(optuna.TrialPruned):
        callback.on_epoch_end(state)
    assert bad.storage.get_trial(bad._trial_id).intermediate_values == {1: 1.5}


def test_bad_requests_are_clear_errors(ctx) -> None:
    with pytest.raises(ConfigError, match="ranking metric"):
        tuning.tune("ease", ctx, trials=1, metric="rmse", progress=False)
    with pytest.raises(ConfigError, match="--metric"):
        tuning.direction_of("accuracy")
    with pytest.raises(ConfigError, match="nothing left to search"):
        tuning.tune("ease", ctx, trials=1, metric="ndcg@10", fixed={"reg": 100.0}, progress=False)
    assert tuning.direction_of("ndcg@10") == "maximize" and tuning.direction_of("rmse") == "minimize"
