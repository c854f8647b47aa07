"""Data-parallel training on this machine: 1 vs 2 processes, and gradient compression.

Trains the torch models on ml-latest-small (random:0.9, seed 42) in one process and in
a 2-process gloo group (spawned here; the same code path as ``cinerec train --nproc 2``
and torchrun), once per DDP communication hook, and reports test RMSE, wall time per
epoch and the bytes each rank handed to all-reduce per optimizer step. Writes
results/distributed.md.

    CINEREC_DATA=../shared/data .venv/bin/python benchmarks/distributed.py [--epochs 5]

Two processes on two cores share them with nothing else; with one process torch uses
both cores for its own maths, so the time column measures what DDP costs or saves on a
laptop, not on a cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "distributed.md"
HOOKS = ("none", "fp16", "powersgd")  # bf16 compression needs NCCL (a GPU group)


def _fit(name: str, epochs: int, hook: str, threads: int) -> dict:
    import torch

    from cinerec import experiment
    from cinerec.models.registry import create_model

    torch.set_num_threads(threads)
    ctx = experiment.load_context("ml-latest-small", "random:0.9", 42, progress=False)
    model = create_model(name, {"epochs": epochs})
    t = time.perf_counter()
    model.fit(ctx.split.train, ctx.split.valid, options={"progress": False, "comm_hook": hook})
    seconds = time.perf_counter() - t
    test = ctx.split.test
    rmse = float(np.sqrt(np.mean((model.predict(test.users, test.items) - test.ratings) ** 2)))
    h = model.history_
    batch = model.config.batch_size
    steps = -(-ctx.split.train.n_ratings // batch)
    return {"rmse": rmse, "seconds": seconds, "epoch_s": float(np.mean(h.time_s)),
            "bytes_per_step": (sum(h.comm_bytes) / max(len(h.comm_bytes), 1)) / steps if h.comm_bytes else 0.0}


def _worker(rank: int, world: int, port: int, name: str, epochs: int, hook: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        res = _fit(name, epochs, hook, threads=1)
        if rank == 0:
            Path(out).write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


def two_processes(name: str, epochs: int, hook: str) -> dict:
    import torch.multiprocessing as mp
    from tests.net import free_port

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "rank0.json")
        t = time.perf_counter()
        mp.start_processes(_worker, args=(2, free_port(), name, epochs, hook, out), nprocs=2,
                           start_method="spawn")
        res = json.loads(Path(out).read_text())
        res["wall_s"] = time.perf_counter() - t
        return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--models", default="mf-torch,ncf")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    rows = []
    for name in args.models.split(","):
        one = _fit(name, args.epochs, "none", threads=os.cpu_count() or 1)
        rows.append((name, 1, "-", one))
        print(f"  {name:9s} 1 process            RMSE {one['rmse']:.4f}  {one['epoch_s']:.2f} s/epoch", flush=True)
        for hook in HOOKS:
            r = two_processes(name, args.epochs, hook)
            rows.append((name, 2, hook, r))
            print(f"  {name:9s} 2 processes {hook:8s} RMSE {r['rmse']:.4f}  {r['epoch_s']:.2f} s/epoch  "
                  f"{r['bytes_per_step'] / 1e3:,.1f} kB/step", flush=True)
    lines = [
        "# Data-parallel training (DDP, gloo) - measured", "",
        f"{platform.machine()}, {os.cpu_count()} cores; ml-latest-small random:0.9 seed 42, {args.epochs} epochs, "
        "default hyper-parameters; test RMSE. Bytes: what one rank handed to all-reduce per optimizer step "
        "(the hook's compressed gradients). Regenerate: "
        "`CINEREC_DATA=../shared/data .venv/bin/python benchmarks/distributed.py`.", "",
        "| model | processes | comm hook | test RMSE | s / epoch | kB sent / step | vs plain all-reduce |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    plain = {n: r["bytes_per_step"] for n, w, h, r in rows if h == "none"}
    for name, world, hook, r in rows:
        ratio = f"{r['bytes_per_step'] / plain[name]:.3f}" if world > 1 and plain.get(name) else "-"
        kb = f"{r['bytes_per_step'] / 1e3:,.1f}" if world > 1 else "-"
        lines.append(f"| {name} | {world} | {hook} | {r['rmse']:.4f} | {r['epoch_s']:.2f} | {kb} | {ratio} |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    main()
