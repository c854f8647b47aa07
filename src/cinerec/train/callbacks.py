"""Callbacks of the `Trainer`: early stopping, checkpoints, progress, and your own.

A callback sees the `TrainState` at the start of training, after every epoch and at
the end. Setting ``state.stop = True`` in `Callback.on_epoch_end` ends training after
that epoch. The Trainer runs the deciding callbacks first (`EarlyStopping`, then the
caller's), then the recording ones (`Checkpoint`, `Progress`), so a checkpoint
always records the decision of its epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from cinerec._util import console, fs
from cinerec.errors import ArtifactError


@dataclass
class TrainHistory:
    """Per-epoch record of a `Trainer.fit` run."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    #: Bytes this rank handed to all-reduce per epoch (distributed runs; empty otherwise).
    comm_bytes: list[int] = field(default_factory=list)
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


@dataclass
class TrainState:
    """Everything a callback may read or change during `Trainer.fit`."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    epochs: int
    history: TrainHistory = field(default_factory=TrainHistory)
    #: Epochs completed so far (a resumed run starts above 0).
    epoch: int = 0
    #: The watched loss improved in the epoch that just ended.
    improved: bool = False
    bad_epochs: int = 0
    best_state: dict[str, Tensor] | None = None
    stop: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}


class Callback:
    """Override any of the three hooks."""

    def on_train_begin(self, state: TrainState) -> None:
        return None

    def on_epoch_end(self, state: TrainState) -> None:
        return None

    def on_train_end(self, state: TrainState) -> None:
        return None


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without improvement of the watched loss; with
    ``restore_best`` the best weights are put back at the end."""

    def __init__(self, patience: int, restore_best: bool = True):
        self.patience = patience
        self.restore_best = restore_best

    def on_train_begin(self, state: TrainState) -> None:
        # validate_start scored the starting weights as epoch 0.
        if self.restore_best and state.history.best_epoch == 0 and state.best_state is None:
            state.best_state = state.snapshot()

    def on_epoch_end(self, state: TrainState) -> None:
        if state.improved:
            state.bad_epochs = 0
            if self.restore_best:
                state.best_state = state.snapshot()
        else:
            state.bad_epochs += 1
        if state.bad_epochs >= self.patience:
            state.stop = True

    def on_train_end(self, state: TrainState) -> None:
        h = state.history
        if state.best_state is not None and h.epoch and h.best_epoch != h.epoch[-1]:
            state.module.load_state_dict(state.best_state)
            h.restored_best = True


def is_rank_zero() -> bool:
    """True outside a process group, and on rank 0 inside one."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Checkpoint(Callback):
    """Atomic checkpoint after each epoch, without pickle; ``resume`` continues from it.

    ``state.safetensors`` holds the module weights, the best weights so far, every
    optimizer state tensor and the RNG states; ``state.json`` (written last, so it names
    a complete checkpoint) holds the epoch, the optimizer's param-group hyper-parameters,
    the scheduler state and the history. Inside a process group only rank 0 writes;
    every rank reads on resume. On CPU a resumed run gives the numbers of an
    uninterrupted one.
    """

    def __init__(self, folder: str | Path, resume: bool = False):
        self.folder = Path(folder)
        self.resume = resume

    def on_train_begin(self, state: TrainState) -> None:
        if self.resume and (self.folder / "state.json").exists():
            self._load(state)

    def on_epoch_end(self, state: TrainState) -> None:
        if is_rank_zero():
            self._save(state)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def _save(self, state: TrainState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Tensor] = {}
        for k, v in state.module.state_dict().items():
            tensors[f"module.{k}"] = v.detach().cpu().contiguous()
        for k, v in (state.best_state or {}).items():
            tensors[f"best.{k}"] = v.detach().cpu().contiguous()
        opt = state.optimizer.state_dict()
        for pid, st in opt["state"].items():
            for name, v in st.items():
                if v is None:  # e.g. SGD's momentum buffer before its first step
                    continue
                t = v if torch.is_tensor(v) else torch.tensor(v)
                tensors[f"opt.{pid}.{name}"] = t.detach().cpu().contiguous()
        tensors["rng.shuffle"] = state.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if state.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(state.device)
        meta = {
            "epoch": state.epoch,
            "bad_epochs": state.bad_epochs,
            "param_groups": opt["param_groups"],
            "scheduler": _jsonable(state.scheduler.state_dict()) if state.scheduler is not None else None,
            "history": state.history.to_dict(),
            "config": state.config,
        }
        with fs.atomic_file(self.folder / "state.safetensors") as tmp:
            save_file(tensors, str(tmp))
        # Not write_json: a plateau scheduler's "best" starts at inf (JSON Infinity).
        fs.write_text(self.folder / "state.json", json.dumps(meta, indent=1))

    def _load(self, state: TrainState) -> None:
        try:
            meta = json.loads((self.folder / "state.json").read_text())
            tensors = load_file(str(self.folder / "state.safetensors"))
        except (OSError, ValueError) as e:
            raise ArtifactError(f"checkpoint in {self.folder} cannot be read ({e}); delete it to start over") from None
        # More (or fewer) epochs may be asked of a resumed run; nothing else may change.
        old = meta.get("config") or {}
        changed = sorted(k for k in old if k != "epochs" and old[k] != state.config.get(k, old[k]))
        if changed:
            raise ArtifactError(
                f"checkpoint in {self.folder} was written with other hyper-parameters "
                f"({', '.join(changed)}); use another checkpoint folder or resume=False"
            )
        state.module.load_state_dict(
            {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}, strict=True
        )
        state.module.to(state.device)
        best = {k[5:]: v.to(state.device) for k, v in tensors.items() if k.startswith("best.")}
        state.best_state = best or None
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = v
        state.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
        if state.scheduler is not None and meta["scheduler"] is not None:
            state.scheduler.load_state_dict(meta["scheduler"])
        state.generator.set_state(tensors["rng.shuffle"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and state.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], state.device)
        state.epoch = int(meta["epoch"])
        state.history = TrainHistory.from_dict(meta["history"])
        state.bad_epochs = int(meta["bad_epochs"])


class Progress(Callback):
    """One transient progress bar of epochs on stderr (rank 0 only)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._bar: Any = None

    def on_train_begin(self, state: TrainState) -> None:
        if self.enabled and is_rank_zero() and state.epochs > state.epoch:
            self._bar = console.progress(True, unit="epochs")
            self._bar.__enter__()
            self._task = self._bar.add_task("training", total=state.epochs, completed=state.epoch)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._bar is None:
            return
        h = state.history
        desc = f"epoch {state.epoch}/{state.epochs} train {h.train_loss[-1]:.4f}"
        if h.valid_loss[-1] is not None:
            desc += f" valid {h.valid_loss[-1]:.4f}"
        self._bar.update(self._task, advance=1, description=desc)

    def on_train_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    return obj
