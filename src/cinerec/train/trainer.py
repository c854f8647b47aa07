"""The one training loop of every torch model in cinerec.

``Trainer(config, options).fit(module, batch_fn, train, valid, callbacks)`` trains
``module`` in place. ``config`` (`TrainerConfig`) holds what is learnt (epochs, lr,
schedule, early stopping, seed); ``options`` (`FitOptions`) how the run goes (device,
progress, checkpoint folder, resume, mixed precision): the same config and seed give
the same numbers whatever the options (on CPU).

``train`` is a dict of equally long tensors (shuffled and sliced each epoch by
`TensorBatches`) or any `BatchSource` (fresh negatives, padded histories...).
``batch_fn(module, batch)`` returns the batch loss, or ``(loss, weight)`` where
``weight`` is the number of terms the loss averages over (used to average validation
losses exactly, e.g. AutoRec's masked loss). It may read ``module.training`` to add a
regularisation term only while training.

Validation is a dict of tensors (same ``batch_fn``, eval mode, no grad) or a callable
``valid(module) -> float``. Early stopping and the plateau schedule watch the
validation loss (the train loss when there is no validation). Checkpoints and
progress are callbacks (`cinerec.train.callbacks`), built from the options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from cinerec.errors import ConfigError
from cinerec.train import distributed
from cinerec.train.batches import BatchSource, TensorBatches, ordered_batches
from cinerec.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    Progress,
    TrainHistory,
    TrainState,
)
from cinerec.train.options import FitOptions, fit_options

BatchFn = Callable[[nn.Module, dict[str, Tensor]], "Tensor | tuple[Tensor, float | Tensor]"]
ValidFn = Callable[[nn.Module], float]

__all__ = ["BatchFn", "Trainer", "TrainerConfig", "TrainHistory", "resolve_device", "seed_everything"]


class TrainerConfig(BaseModel):
    """Hyper-parameters of the training loop (validated, JSON round-trippable)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    epochs: int = Field(20, ge=0)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.0, ge=0, description="SGD only")
    #: none | plateau (ReduceLROnPlateau on the watched loss) | step (StepLR, paper 000's
    #: eta_t = eta_0 * gamma ** floor(t / T) with t counted in epochs).
    schedule: Literal["none", "plateau", "step"] = "none"
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(2, ge=0)
    step_size: int = Field(10, ge=1)
    step_gamma: float = Field(0.5, gt=0, le=1)
    #: Epochs without improvement of the watched loss before stopping; None = off.
    early_stopping_patience: int | None = Field(None, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True
    #: Score the starting weights on the validation part before training, as "epoch
    #: 0": with ``restore_best`` a fine-tuning run then never ends worse on validation
    #: than it started (used by `TorchRecommender.finetune`, e.g. for QAT).
    validate_start: bool = False
    grad_clip: float | None = Field(None, gt=0)
    seed: int = 42


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when available else CPU; ``cuda``/``cuda:N`` without that GPU is
    an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


class Trainer:
    """Mini-batch training of an ``nn.Module``."""

    def __init__(
        self,
        config: TrainerConfig | dict[str, Any] | None = None,
        options: FitOptions | dict[str, Any] | None = None,
        **overrides: Any,
    ):
        data = config.model_dump() if isinstance(config, TrainerConfig) else dict(config or {})
        data.update(overrides)
        try:
            self.config = TrainerConfig.model_validate(data)
        except ValueError as e:
            raise ConfigError(f"invalid trainer config:\n{e}") from None
        self.options = fit_options(options)
        self.device = resolve_device(self.options.device)

    # ---- public --------------------------------------------------------------------
    def fit(
        self,
        module: nn.Module,
        batch_fn: BatchFn,
        train: dict[str, Tensor] | BatchSource,
        valid: dict[str, Tensor] | ValidFn | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> TrainHistory:
        """Train ``module`` in place; return the per-epoch history."""
        cfg, opts = self.config, self.options
        source = train if isinstance(train, BatchSource) else TensorBatches(train, cfg.batch_size)
        if source.n_rows <= 0:
            raise ConfigError("the training batch source has no rows")
        rank, world = distributed.world()
        if world > 1:
            if not hasattr(source, "sharded"):
                raise ConfigError(
                    f"{type(source).__name__} cannot shard its batches (no sharded(rank, world)): "
                    f"it cannot train on {world} processes"
                )
            source = source.sharded(rank, world)
        seed_everything(cfg.seed)
        module.to(self.device)
        source = source.to(self.device)
        # Inside a process group the loss runs in DDP's forward (gradients averaged).
        runner = distributed.wrap(module, batch_fn, self.device, opts.comm_hook) if world > 1 else None
        if isinstance(valid, dict):
            valid = {k: v.to(self.device) for k, v in valid.items()}
        optimizer = self._optimizer(module)
        # Shuffling has its own generator (on CPU: identical orders on every device),
        # so resuming restores it exactly and dropout's global RNG stays separate.
        state = TrainState(
            module=module, optimizer=optimizer, scheduler=self._scheduler(optimizer),
            generator=torch.Generator().manual_seed(cfg.seed), epochs=cfg.epochs,
            config=cfg.model_dump(mode="json"), device=self.device,
        )  # fmt: skip
        amp_dtype, scaler = self._amp()
        deciding: list[Callback] = []
        if cfg.early_stopping_patience is not None:
            deciding.append(EarlyStopping(cfg.early_stopping_patience, cfg.restore_best))
        deciding.extend(callbacks)
        recording: list[Callback] = []
        if opts.checkpoint_dir:
            recording.append(Checkpoint(opts.checkpoint_dir, opts.resume))
        progress = Progress(opts.progress)
        recording.append(progress)
        everything = deciding + recording

        for cb in recording:  # a resumed checkpoint first, then the others see it
            if isinstance(cb, Checkpoint):
                cb.on_train_begin(state)
        if cfg.validate_start and state.epoch == 0 and valid is not None:
            state.history.best_loss = self._evaluate(module, batch_fn, valid, amp_dtype)
            state.history.best_epoch = 0
        for cb in everything:
            if not isinstance(cb, Checkpoint):
                cb.on_train_begin(state)
        try:
            while state.epoch < cfg.epochs and not state.stop:
                self._run_epoch(state, source, batch_fn, valid, amp_dtype, scaler, deciding, recording, runner)
        finally:
            progress.on_train_end(state)
        for cb in everything:
            if cb is not progress:
                cb.on_train_end(state)
        module.eval()
        return state.history

    def _run_epoch(
        self,
        state: TrainState,
        source: BatchSource,
        batch_fn: BatchFn,
        valid: Any,
        amp_dtype: torch.dtype | None,
        scaler: Any,
        deciding: list[Callback],
        recording: list[Callback],
        runner: nn.Module | None = None,
    ) -> None:
        cfg, h = self.config, state.history
        t0 = time.perf_counter()
        meter = distributed.CommMeter()
        with meter.active() if runner is not None else nullcontext():
            train_loss = self._train_epoch(state, source, batch_fn, amp_dtype, scaler, runner)
        if runner is not None:
            h.comm_bytes.append(meter.bytes)
        valid_loss = self._evaluate(state.module, batch_fn, valid, amp_dtype)
        watched = valid_loss if valid_loss is not None else train_loss
        state.epoch += 1
        h.epoch.append(state.epoch)
        h.train_loss.append(train_loss)
        h.valid_loss.append(valid_loss)
        h.lr.append(state.optimizer.param_groups[0]["lr"])
        h.time_s.append(time.perf_counter() - t0)
        state.improved = h.best_loss is None or watched < h.best_loss - cfg.min_delta
        if state.improved:
            h.best_loss, h.best_epoch = watched, state.epoch
        if state.scheduler is not None:
            if isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                state.scheduler.step(watched)
            else:
                state.scheduler.step()
        for cb in deciding:
            cb.on_epoch_end(state)
        h.stopped_early = bool(state.stop and state.epoch < cfg.epochs)
        for cb in recording:
            cb.on_epoch_end(state)

    # ---- pieces --------------------------------------------------------------------
    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("the module has no trainable parameters")
        # The fused kernels are ~10x faster than the per-tensor loop on CPU, which
        # decides the speed of small-batch training (NCF's batch 64); same algorithm.
        fused = {"fused": True} if all(p.is_floating_point() for p in params) else {}
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused
        )

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        cfg = self.config
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
            )
        if cfg.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.step_gamma)
        return None

    def _amp(self) -> tuple[torch.dtype | None, Any]:
        if not (self.options.mixed_precision and self.device.type == "cuda"):
            return None, None
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, None
        return torch.float16, torch.amp.GradScaler("cuda")

    def _autocast(self, amp_dtype: torch.dtype | None) -> Any:
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=amp_dtype)

    def _train_epoch(
        self,
        state: TrainState,
        source: BatchSource,
        batch_fn: BatchFn,
        amp_dtype: torch.dtype | None,
        scaler: Any,
        runner: nn.Module | None = None,
    ) -> float:
        cfg, module, optimizer = self.config, state.module, state.optimizer
        (runner or module).train()
        # Accumulate on device; one sync per epoch instead of one per batch.
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        weight = 0.0
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for batch in source.batches(state.epoch, state.generator):
            rows = next(iter(batch.values())).shape[0]
            with self._autocast(amp_dtype):
                loss, w = _split_loss(batch_fn(module, batch) if runner is None else runner(batch), rows)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if cfg.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
            total += loss.detach().double() * w
            weight += float(w)
        # Every rank reports (and decides on) the loss over all ranks' rows.
        total_all, weight_all = distributed.all_reduce_sum([float(total.item()), weight], self.device)
        return float(total_all / max(weight_all, 1e-12))

    @torch.no_grad()
    def _evaluate(
        self,
        module: nn.Module,
        batch_fn: BatchFn,
        valid: dict[str, Tensor] | ValidFn | None,
        amp_dtype: torch.dtype | None,
    ) -> float | None:
        if valid is None:
            return None
        module.eval()
        if callable(valid):
            return float(valid(module))
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        weight = 0.0
        for batch in ordered_batches(valid, self.options.eval_batch_size):
            with self._autocast(amp_dtype):
                loss, w = _split_loss(batch_fn(module, batch), next(iter(batch.values())).shape[0])
            total += loss.double() * w
            weight += float(w)
        return float(total.item() / max(weight, 1e-12))


def _split_loss(out: Any, default_weight: int) -> tuple[Tensor, float]:
    if isinstance(out, tuple):
        loss, w = out
        return loss, float(w)
    return out, float(default_weight)
