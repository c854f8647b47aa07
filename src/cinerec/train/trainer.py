"""The one training loop of every torch model in cinerec.

`Trainer(config).fit(module, batch_fn, train, valid)` trains ``module`` on a dict of
equally long tensors. Each epoch draws one ``torch.randperm`` from a seeded generator
and slices it into batches: no per-sample ``DataLoader``, so a small model with
batch 64 spends its time in torch, not in Python.

``batch_fn(module, batch)`` returns the batch loss, or ``(loss, weight)`` where
``weight`` is the number of terms the loss averages over (used to average
validation losses exactly, e.g. AutoRec's masked loss). It may read
``module.training`` to add a regularisation term only while training.

Validation is either a dict of tensors (same ``batch_fn``, eval mode, no grad) or a
callable ``valid(module) -> float``. Early stopping and the plateau schedule watch
the validation loss (the train loss when there is no validation).

Checkpoints (``checkpoint_dir``) are written after each epoch, atomically, without
pickle: ``state.safetensors`` holds the module weights, the best weights so far, every
optimizer state tensor and the RNG states; ``state.json`` holds the epoch, the
optimizer's param-group hyper-parameters, the scheduler state and the history.
``resume=True`` continues from it and gives the same numbers as an uninterrupted run
on CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from cinerec.errors import ConfigError

BatchFn = Callable[[nn.Module, dict[str, Tensor]], "Tensor | tuple[Tensor, float | Tensor]"]
ValidFn = Callable[[nn.Module], float]


class TrainerConfig(BaseModel):
    """Hyper-parameters of the training loop (validated, JSON round-trippable)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    epochs: int = Field(20, ge=0)
    batch_size: int = Field(256, ge=1)
    eval_batch_size: int = Field(8192, ge=1)
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
    #: Autocast on CUDA only (bf16 where supported, else fp16 with a GradScaler).
    mixed_precision: bool = True
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    seed: int = 42
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True


@dataclass
class TrainHistory:
    """Per-epoch record of a `Trainer.fit` run."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_loss: float | None = None
    stopped_early: bool = False
    restored_best: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainHistory:
        return cls(**d)

    def __len__(self) -> int:
        return len(self.epoch)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available else CPU; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


class Trainer:
    """Mini-batch training of an ``nn.Module`` from pre-built tensors."""

    def __init__(self, config: TrainerConfig | dict[str, Any] | None = None, **overrides: Any):
        data = config.model_dump() if isinstance(config, TrainerConfig) else dict(config or {})
        data.update(overrides)
        self.config = TrainerConfig.model_validate(data)
        self.device = resolve_device(self.config.device)

    # ---- public --------------------------------------------------------------------
    def fit(
        self,
        module: nn.Module,
        batch_fn: BatchFn,
        train: dict[str, Tensor],
        valid: dict[str, Tensor] | ValidFn | None = None,
        on_epoch_end: Callable[[int, TrainHistory], bool | None] | None = None,
    ) -> TrainHistory:
        """Train ``module`` in place; return the per-epoch history.

        ``on_epoch_end(epoch, history)`` may return True to stop training.
        """
        cfg = self.config
        n = _check_tensors(train, "train")
        seed_everything(cfg.seed)
        module.to(self.device)
        train = {k: v.to(self.device) for k, v in train.items()}
        if isinstance(valid, dict):
            _check_tensors(valid, "valid")
            valid = {k: v.to(self.device) for k, v in valid.items()}
        optimizer = self._optimizer(module)
        scheduler = self._scheduler(optimizer)
        # Shuffling has its own generator (on CPU: identical orders on every device),
        # so resuming restores it exactly and dropout's global RNG stays separate.
        gen = torch.Generator().manual_seed(cfg.seed)
        amp_dtype, scaler = self._amp()
        history = TrainHistory()
        best_state: dict[str, Tensor] | None = None
        bad_epochs = 0
        start = 0
        ckpt = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        if ckpt is not None and cfg.resume and (ckpt / "state.json").exists():
            start, history, best_state, bad_epochs = self._load_checkpoint(
                ckpt, module, optimizer, scheduler, gen
            )

        if cfg.validate_start and start == 0 and valid is not None:
            history.best_loss = self._evaluate(module, batch_fn, valid, amp_dtype)
            history.best_epoch = 0
            if cfg.early_stopping_patience is not None and cfg.restore_best:
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}

        progress = _progress(cfg.progress and cfg.epochs > start)
        with progress:
            task = progress.add_task("training", total=cfg.epochs, completed=start)
            for epoch in range(start, cfg.epochs):
                t0 = time.perf_counter()
                train_loss = self._train_epoch(
                    module, batch_fn, train, n, optimizer, gen, amp_dtype, scaler
                )
                valid_loss = self._evaluate(module, batch_fn, valid, amp_dtype)
                lr = optimizer.param_groups[0]["lr"]
                watched = valid_loss if valid_loss is not None else train_loss
                history.epoch.append(epoch + 1)
                history.train_loss.append(train_loss)
                history.valid_loss.append(valid_loss)
                history.lr.append(lr)
                history.time_s.append(time.perf_counter() - t0)
                if history.best_loss is None or watched < history.best_loss - cfg.min_delta:
                    history.best_loss, history.best_epoch = watched, epoch + 1
                    bad_epochs = 0
                    if cfg.early_stopping_patience is not None and cfg.restore_best:
                        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad_epochs += 1
                if scheduler is not None:
                    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        scheduler.step(watched)
                    else:
                        scheduler.step()
                stop = (
                    cfg.early_stopping_patience is not None
                    and bad_epochs >= cfg.early_stopping_patience
                )
                if on_epoch_end is not None and on_epoch_end(epoch + 1, history):
                    stop = True
                history.stopped_early = bool(stop and epoch + 1 < cfg.epochs)
                if ckpt is not None:
                    self._save_checkpoint(
                        ckpt, epoch + 1, module, optimizer, scheduler, gen, history, best_state,
                        bad_epochs,
                    )
                desc = f"epoch {epoch + 1}/{cfg.epochs} train {train_loss:.4f}"
                if valid_loss is not None:
                    desc += f" valid {valid_loss:.4f}"
                progress.update(task, advance=1, description=desc)
                if stop:
                    break
        if best_state is not None and history.best_epoch != (history.epoch[-1] if history.epoch else None):
            module.load_state_dict(best_state)
            history.restored_best = True
        module.eval()
        return history

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
        if not (self.config.mixed_precision and self.device.type == "cuda"):
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
        module: nn.Module,
        batch_fn: BatchFn,
        train: dict[str, Tensor],
        n: int,
        optimizer: torch.optim.Optimizer,
        gen: torch.Generator,
        amp_dtype: torch.dtype | None,
        scaler: Any,
    ) -> float:
        cfg = self.config
        module.train()
        perm = torch.randperm(n, generator=gen).to(self.device)
        bs = cfg.batch_size
        # Accumulate on device; one sync per epoch instead of one per batch.
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        weight = 0.0
        params = [p for g in optimizer.param_groups for p in g["params"]]
        # A last batch of one row is merged into the one before: BatchNorm cannot
        # train on a single row.
        starts = list(range(0, n, bs))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        ends = starts[1:] + [n]
        for s, e in zip(starts, ends, strict=True):
            idx = perm[s:e]
            batch = {k: v[idx] for k, v in train.items()}
            with self._autocast(amp_dtype):
                loss, w = _split_loss(batch_fn(module, batch), idx.shape[0])
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
        return float(total.item() / max(weight, 1e-12))

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
        n = _check_tensors(valid, "valid")
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        weight = 0.0
        for s in range(0, n, self.config.eval_batch_size):
            batch = {k: v[s : s + self.config.eval_batch_size] for k, v in valid.items()}
            with self._autocast(amp_dtype):
                loss, w = _split_loss(batch_fn(module, batch), next(iter(batch.values())).shape[0])
            total += loss.double() * w
            weight += float(w)
        return float(total.item() / max(weight, 1e-12))

    # ---- checkpoints ---------------------------------------------------------------
    def _save_checkpoint(
        self,
        path: Path,
        epoch: int,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        gen: torch.Generator,
        history: TrainHistory,
        best_state: dict[str, Tensor] | None,
        bad_epochs: int,
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Tensor] = {}
        for k, v in module.state_dict().items():
            tensors[f"module.{k}"] = v.detach().cpu().contiguous()
        for k, v in (best_state or {}).items():
            tensors[f"best.{k}"] = v.detach().cpu().contiguous()
        opt = optimizer.state_dict()
        for pid, st in opt["state"].items():
            for name, v in st.items():
                if v is None:  # e.g. SGD's momentum buffer before its first step
                    continue
                t = v if torch.is_tensor(v) else torch.tensor(v)
                tensors[f"opt.{pid}.{name}"] = t.detach().cpu().contiguous()
        tensors["rng.shuffle"] = gen.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {
            "epoch": epoch,
            "bad_epochs": bad_epochs,
            "param_groups": opt["param_groups"],
            "scheduler": _jsonable(scheduler.state_dict()) if scheduler is not None else None,
            "history": history.to_dict(),
            "config": self.config.model_dump(mode="json"),
        }
        # Tensors first, JSON last: state.json names a complete checkpoint.
        _atomic(path / "state.safetensors", lambda p: save_file(tensors, str(p)))
        _atomic(path / "state.json", lambda p: p.write_text(json.dumps(meta, indent=1)))

    def _load_checkpoint(
        self,
        path: Path,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        gen: torch.Generator,
    ) -> tuple[int, TrainHistory, dict[str, Tensor] | None, int]:
        meta = json.loads((path / "state.json").read_text())
        tensors = load_file(str(path / "state.safetensors"))
        module.load_state_dict(
            {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}, strict=True
        )
        module.to(self.device)
        best = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")} or None
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        if scheduler is not None and meta["scheduler"] is not None:
            scheduler.load_state_dict(meta["scheduler"])
        gen.set_state(tensors["rng.shuffle"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        return int(meta["epoch"]), TrainHistory.from_dict(meta["history"]), best, int(meta["bad_epochs"])


# ---- helpers -------------------------------------------------------------------------
def _check_tensors(tensors: dict[str, Tensor], what: str) -> int:
    if not tensors:
        raise ConfigError(f"{what} tensors are empty: pass a dict of equally long tensors")
    sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ConfigError(f"{what} tensors differ in length: {sizes}")
    n = next(iter(sizes.values()))
    if n == 0:
        raise ConfigError(f"{what} tensors have no rows")
    return n


def _split_loss(out: Any, default_weight: int) -> tuple[Tensor, float]:
    if isinstance(out, tuple):
        loss, w = out
        return loss, float(w)
    return out, float(default_weight)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    if isinstance(obj, float) and math.isinf(obj):
        return obj  # json writes Infinity, which json.loads reads back
    return obj


def _atomic(target: Path, write: Callable[[Path], Any]) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
    )
