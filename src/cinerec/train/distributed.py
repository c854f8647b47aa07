"""Data-parallel training on PyTorch's own engine: `torch.distributed` and DDP.

A run of N processes (``torchrun --nproc-per-node N -m cinerec train ...`` or
``cinerec train ... --nproc N``, which launches torchrun's own runner) trains the same
model on N shards of every batch: each process joins the group torchrun describes
(`init_from_env`: gloo on CPU, NCCL on CUDA), the `Trainer` wraps the model's loss in
`DistributedDataParallel` (`wrap`), every rank takes its share of each *global* batch
(`TensorBatches` with ``shard``), and DDP averages the gradients. Because a step's
global batch is the one a single process would take, 1 and N processes follow the same
trajectory up to floating-point summation order; checkpoints hold the unwrapped module
and the one shuffling generator, so a run resumes under any number of processes.

Gradient compression is one of PyTorch's DDP communication hooks (`COMM_HOOKS`:
``fp16``, ``bf16``, ``powersgd``); `CommMeter` counts the bytes the hooks hand to
all-reduce, so the saving is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from cinerec.errors import ConfigError
from cinerec.train.options import COMM_HOOKS, launched_world_size

_all_reduce = dist.all_reduce  # bypasses `CommMeter` (losses, not gradients)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT),
    gloo on CPU, NCCL on CUDA; False (nothing done) when not launched as several
    processes or already joined."""
    if launched_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """``forward(batch) = batch_fn(inner, batch)``: DDP synchronises gradients of what
    runs inside a wrapped module's forward, and cinerec's losses read the model's
    tables directly (``module.user_emb(u)``), not through its forward."""

    def __init__(self, inner: nn.Module, batch_fn: Callable[[nn.Module, dict[str, Tensor]], Any]):
        super().__init__()
        self.inner = inner
        self._batch_fn = batch_fn

    def forward(self, batch: dict[str, Tensor]) -> Any:
        return self._batch_fn(self.inner, batch)


def wrap(module: nn.Module, batch_fn: Callable[..., Any], device: torch.device, comm_hook: str = "none") -> nn.Module:
    """The DDP module to call as ``ddp(batch)`` in place of ``batch_fn(module, batch)``."""
    from torch.nn.parallel import DistributedDataParallel

    if comm_hook not in COMM_HOOKS:
        raise ConfigError(f"comm_hook must be one of {', '.join(COMM_HOOKS)}, got {comm_hook!r}")
    if comm_hook == "bf16" and dist.get_backend() != "nccl":
        raise ConfigError(f"comm_hook 'bf16' needs NCCL (CUDA); this group runs {dist.get_backend()}: "
                          "use fp16 or powersgd")
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    extra = {}
    if comm_hook == "powersgd" and dist.get_backend() == "gloo":
        # PowerSGD waits, inside a finished all-reduce's callback, for the next one; gloo
        # runs callbacks on its few worker threads, so two buckets in flight wait on each
        # other for ever (measured: a hang at step 3 on ml-latest-small). One bucket.
        extra["bucket_cap_mb"] = 1 << 16
    ddp = DistributedDataParallel(LossModule(module, batch_fn), device_ids=ids, **extra)
    _register_hook(ddp, comm_hook)
    return ddp


def _register_hook(ddp: nn.Module, name: str) -> None:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

    if name == "none":
        # The same all-reduce DDP does by itself, through Python, so `CommMeter` sees it.
        ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    elif name == "fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif name == "bf16":
        ddp.register_comm_hook(None, default_hooks.bf16_compress_hook)
    else:
        # Rank-1 PowerSGD with error feedback from the third step on (DDP needs two
        # plain steps first; cinerec's runs are short, so no longer warm-up).
        state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=1,
                                            start_powerSGD_iter=2, min_compression_rate=2)
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)


class CommMeter:
    """Bytes each rank hands to ``torch.distributed.all_reduce`` while active (the DDP
    hooks all reduce through it; `wrap` routes even the uncompressed case through a
    hook), counted per tensor as ``numel * element_size``."""

    def __init__(self) -> None:
        self.bytes = 0
        self.calls = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[CommMeter]:
        original = dist.all_reduce

        def counting(tensor: Tensor, *args: Any, **kwargs: Any) -> Any:
            self.bytes += tensor.numel() * tensor.element_size()
            self.calls += 1
            return original(tensor, *args, **kwargs)

        dist.all_reduce = counting
        try:
            yield self
        finally:
            dist.all_reduce = original


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (float64); ``values`` unchanged
    outside a process group."""
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    _all_reduce(t)
    return t.tolist()
