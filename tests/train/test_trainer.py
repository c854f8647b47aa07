"""The single torch training loop: convergence, early stopping, schedules, resume, seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cinerec.errors import ConfigError
from cinerec.train import Callback, Trainer, TrainerConfig, TrainState
from cinerec.train.batches import TensorBatches


def _data(n: int = 256, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return {"x": x, "y": y}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 1))


def _loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return ((module(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()


def _weights(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.state_dict().values()]


BASE = {"epochs": 6, "batch_size": 32, "lr": 1e-2}
QUIET = {"progress": False}


def test_loss_decreases() -> None:
    h = Trainer(BASE, QUIET).fit(_net(), _loss, _data())
    assert len(h) == 6 and h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.valid_loss == [None] * 6 and all(t >= 0 for t in h.time_s)


def test_valid_callable_and_tuple_loss() -> None:
    def weighted(module: nn.Module, batch: dict[str, torch.Tensor]):
        return _loss(module, batch), batch["x"].shape[0]

    h = Trainer(BASE, QUIET).fit(_net(), weighted, _data(), valid=lambda m: 1.25)
    assert h.valid_loss == [1.25] * 6


def test_early_stopping_stops_and_restores_best() -> None:
    module = _net()
    snapshots: dict[int, list[torch.Tensor]] = {}

    class Record(Callback):
        def on_epoch_end(self, state: TrainState) -> None:
            snapshots[state.epoch] = _weights(module)

    # Validation loss that is best at epoch 2 then worsens: training must stop after
    # `patience` bad epochs and come back to epoch 2's weights.
    scripted = iter([3.0, 1.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9])
    h = Trainer(BASE, QUIET, epochs=8, early_stopping_patience=2).fit(
        module, _loss, _data(), valid=lambda m: next(scripted), callbacks=[Record()]
    )
    assert h.epoch == [1, 2, 3, 4] and h.stopped_early and h.best_epoch == 2
    assert h.restored_best
    for a, b in zip(_weights(module), snapshots[2], strict=True):
        assert torch.equal(a, b)


def test_plateau_schedule_halves_lr() -> None:
    losses = iter([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    h = Trainer(BASE, QUIET, schedule="plateau", plateau_factor=0.5, plateau_patience=1).fit(
        _net(), _loss, _data(), valid=lambda m: next(losses)
    )
    # lr is recorded before each epoch's scheduler step. After the best epoch 1, a cut
    # comes once the bad epochs exceed the patience (2 bad epochs), then the count
    # restarts: epochs 2-3 bad -> cut, epochs 4-5 bad -> cut.
    assert h.lr == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3])


def test_step_schedule_follows_paper_000_formula() -> None:
    h = Trainer(BASE, QUIET, epochs=7, schedule="step", step_size=3, step_gamma=0.1).fit(
        _net(), _loss, _data()
    )
    expected = [1e-2 * 0.1 ** (t // 3) for t in range(7)]
    assert h.lr == pytest.approx(expected)


def test_same_seed_same_numbers_on_cpu() -> None:
    a, b = _net(), _net()
    ha = Trainer(BASE, QUIET, seed=3).fit(a, _loss, _data())
    hb = Trainer(BASE, QUIET, seed=3).fit(b, _loss, _data())
    assert ha.train_loss == hb.train_loss
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))
    hc = Trainer(BASE, QUIET, seed=4).fit(_net(), _loss, _data())
    assert hc.train_loss != ha.train_loss


@pytest.mark.parametrize("schedule", ["plateau", "step"])
def test_checkpoint_resume_matches_uninterrupted(tmp_path, schedule: str) -> None:
    data, valid = _data(), _data(64, seed=1)
    cfg = BASE | {"schedule": schedule, "step_size": 2, "plateau_patience": 0}
    full = _net()
    h_full = Trainer(cfg, QUIET).fit(full, _loss, data, valid)

    part = _net()
    Trainer(cfg, QUIET | {"checkpoint_dir": str(tmp_path)}, epochs=3).fit(part, _loss, data, valid)
    assert (tmp_path / "state.json").exists() and (tmp_path / "state.safetensors").exists()
    resumed = _net()  # fresh weights: everything must come from the checkpoint
    h_res = Trainer(cfg, QUIET | {"checkpoint_dir": str(tmp_path), "resume": True}).fit(resumed, _loss, data, valid)
    assert h_res.epoch == h_full.epoch
    assert h_res.train_loss == pytest.approx(h_full.train_loss, rel=1e-6)
    assert h_res.lr == pytest.approx(h_full.lr)
    for a, b in zip(_weights(full), _weights(resumed), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_sgd_and_grad_clip_run_on_cpu() -> None:
    t = Trainer(BASE, QUIET | {"device": "cpu"}, optimizer="sgd", momentum=0.9, lr=1e-2, grad_clip=1.0)
    assert t.device.type == "cpu"
    h = t.fit(_net(), _loss, _data())
    assert h.train_loss[-1] < h.train_loss[0]


def test_singleton_last_batch_is_merged_for_batchnorm() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    data = _data(65)
    h = Trainer(BASE, QUIET, epochs=1, batch_size=32).fit(net, _loss, data)
    assert len(h) == 1


def test_bad_inputs_raise_config_errors() -> None:
    with pytest.raises(ConfigError):
        Trainer(BASE, QUIET).fit(_net(), _loss, {"x": torch.zeros(3, 4), "y": torch.zeros(2)})
    with pytest.raises(ConfigError):
        Trainer(BASE, QUIET).fit(_net(), _loss, {})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            Trainer(BASE, QUIET | {"device": "cuda"})
        with pytest.raises(ConfigError):
            Trainer(BASE, QUIET | {"device": "cuda:1"})
    with pytest.raises(ConfigError):
        Trainer(BASE, {"device": "gpu0"})
    with pytest.raises(ConfigError, match="trainer config"):
        Trainer(BASE, QUIET, device="cpu")  # a run option is not a hyper-parameter
    assert TrainerConfig.model_validate(TrainerConfig().model_dump()) == TrainerConfig()


def test_validate_start_lets_a_harmful_finetune_fall_back_to_the_start() -> None:
    module = _net()
    Trainer(BASE, QUIET, epochs=20).fit(module, _loss, _data())
    start = _weights(module)
    valid = _data(seed=1)
    # A learning rate this large only makes the validation loss worse.
    cfg = BASE | {"epochs": 3, "lr": 5.0, "early_stopping_patience": 5}
    h = Trainer(cfg, QUIET, validate_start=True).fit(module, _loss, _data(), valid=valid)
    assert h.best_epoch == 0 and h.restored_best
    assert all(torch.equal(a, b) for a, b in zip(_weights(module), start, strict=True))
    # without it the best of the (bad) fine-tuning epochs is kept
    Trainer(cfg, QUIET).fit(module, _loss, _data(), valid=valid)
    assert not all(torch.equal(a, b) for a, b in zip(_weights(module), start, strict=True))


class _FreshNoise:
    """A batch source that draws new inputs every epoch (as a negative sampler would)."""

    def __init__(self, n: int = 1024):
        self.n_rows = n
        self.seen: list[int] = []

    def to(self, device: torch.device) -> _FreshNoise:
        return self

    def batches(self, epoch: int, generator: torch.Generator):
        self.seen.append(epoch)
        x = torch.randn(self.n_rows, 4, generator=generator)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        for s in range(0, self.n_rows, 32):
            yield {"x": x[s : s + 32], "y": y[s : s + 32]}


def test_batch_source_is_asked_for_every_epoch() -> None:
    source = _FreshNoise()
    h = Trainer(BASE, QUIET).fit(_net(), _loss, source)
    assert source.seen == list(range(6))
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]


def test_tensor_batches_shards_cover_every_row_once() -> None:
    data = {"i": torch.arange(101)}
    seen = []
    for rank in range(3):
        source = TensorBatches(data, batch_size=8, shard=(rank, 3))
        seen += [b["i"] for b in source.batches(0, torch.Generator().manual_seed(5))]
    assert sorted(torch.cat(seen).tolist()) == list(range(101))
    with pytest.raises(ConfigError):
        TensorBatches(data, 8, shard=(3, 3))


def test_callback_can_stop_training_and_sees_every_hook() -> None:
    calls: list[str] = []

    class StopAtThree(Callback):
        def on_train_begin(self, state: TrainState) -> None:
            calls.append("begin")

        def on_epoch_end(self, state: TrainState) -> None:
            calls.append(f"epoch{state.epoch}")
            state.stop = state.epoch == 3

        def on_train_end(self, state: TrainState) -> None:
            calls.append("end")

    h = Trainer(BASE, QUIET).fit(_net(), _loss, _data(), callbacks=[StopAtThree()])
    assert calls == ["begin", "epoch1", "epoch2", "epoch3", "end"]
    assert len(h) == 3 and h.stopped_early


def test_resume_refuses_a_checkpoint_of_other_hyper_parameters(tmp_path) -> None:
    from cinerec.errors import ArtifactError

    opts = QUIET | {"checkpoint_dir": str(tmp_path)}
    Trainer(BASE, opts, epochs=2).fit(_net(), _loss, _data())
    with pytest.raises(ArtifactError, match="lr"):
        Trainer(BASE, opts | {"resume": True}, epochs=2, lr=0.5).fit(_net(), _loss, _data())
