"""Embedding compression measured (paper 000, 4.2): bytes, ratio, accuracy, latency.

Part 1: each torch model (mf-torch; ncf / autorec when registered and they expose tables)
trained on ml-latest-small, random 90/10 split, seed 42, then each compression method;
metrics from `cinerec.evaluation.protocol.evaluate(fit=False)`.
Part 2: a TorchMF-shaped pair of tables at the ML-25M shape (162,541 users x 62,423 items,
64 factors) with RANDOM weights (latency and memory do not depend on the values):
single-user top-10 latency and batch scoring throughput, fp32 vs compressed.

Run: CINEREC_DATA=../shared/data .venv/bin/python benchmarks/compression.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cinerec.compress.api import compress_model, embedding_bytes
from cinerec.compress.hashing import collision_rate, expected_collision_rate
from cinerec.compress.ptq import QuantizedEmbedding
from cinerec.compress.vq import PQEmbedding, RQEmbedding
from cinerec.data import load_dataset
from cinerec.data.splits import Split
from cinerec.evaluation.protocol import evaluate
from cinerec.models.base import create_model

OUT = Path(__file__).parent / "results" / "compression.md"
METHODS = [
    ("FP32", None, {}),
    ("INT8 PTQ", "int8", {}),
    ("INT4 PTQ", "int4", {}),
    ("INT4 QAT", "qat-int4", {"epochs": 3, "lr": 1e-3}),
    ("PQ M=8 K=256", "pq", {"subvectors": 8, "iters": 15}),
    ("PQ M=8 + codebook FT", "pq", {"subvectors": 8, "iters": 15, "finetune_epochs": 3, "lr": 1e-3}),
    ("RQ L=2 K=256", "rq", {"stages": 2, "iters": 15}),
    ("Hash n/4", "hash", {"bucket_ratio": 4.0, "epochs": 5}),
    ("QR n/4 (mult)", "qr", {"bucket_ratio": 4.0, "epochs": 5}),
]


def random_split(seed: int = 42) -> Split:
    ds = load_dataset("ml-latest-small", progress=False)
    rng = np.random.default_rng(seed)
    test = np.zeros(ds.n_ratings, dtype=bool)
    test[rng.permutation(ds.n_ratings)[: ds.n_ratings // 10]] = True
    return Split(train=ds.subset(~test), test=ds.subset(test), spec="random:0.1", seed=seed)


def accuracy_table(models: list[str], quick: bool) -> list[str]:
    split = random_split()
    rows = ["| model | method | emb. bytes | ratio | RMSE | MAE | NDCG@10 | top-10 p50 ms | top-10 p99 ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in models:
        cfg = {"progress": False, "seed": 42}
        if quick:
            cfg["epochs"] = 5
        base = create_model(name, cfg)
        if not hasattr(base, "embedding_tables"):
            continue
        base.fit(split.train)
        for label, method, opts in METHODS:
            model = copy.deepcopy(base)
            t0 = time.perf_counter()
            if method:
                compress_model(model, method, train=split.train, **opts)
            took = time.perf_counter() - t0
            rep = evaluate(model, split, k=10, fit=False, progress=False,
                           metrics=["rmse", "mae", "ndcg@10", "efficiency"])
            m = rep.metrics if hasattr(rep, "metrics") else rep
            b = embedding_bytes(model)
            rows.append(
                f"| {name} | {label} | {b['compressed_bytes']:,} | {b['ratio']:.2f}x | {m['rmse']:.4f} "
                f"| {m['mae']:.4f} | {m['ndcg@10']:.4f} | {m['topk_p50_ms']:.2f} | {m['topk_p99_ms']:.2f} |"
            )
            print(rows[-1], f"(compress {took:.1f}s)", flush=True)
    return rows


def _timeit(fn, reps: int) -> np.ndarray:
    fn()  # warm-up (numba compile, caches)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(out)


def ml25m_table(quick: bool) -> list[str]:
    n_users, n_items, d = 162_541, 62_423, 64
    g = torch.Generator().manual_seed(0)
    items = torch.randn(n_items, d, generator=g) * 0.1
    users = torch.randn(n_users, d, generator=g) * 0.1
    # Codes for PQ/RQ are random (the values do not change the cost), codebooks random.
    pq = PQEmbedding(n_items, d, 8, 256)
    rq = RQEmbedding(n_items, d, 2, 256)
    with torch.no_grad():
        for mod in (pq, rq):
            mod.codes.copy_(torch.randint(0, 256, mod.codes.shape, generator=g).to(torch.uint8))
            mod.codebooks.copy_(torch.randn(mod.codebooks.shape, generator=g).half())
    tables = {"FP32": None, "INT8": QuantizedEmbedding.from_float(items, 8),
              "INT4": QuantizedEmbedding.from_float(items, 4), "PQ M=8": pq, "RQ L=2": rq}
    reps = 30 if quick else 200
    batch = 1024
    ub = users[:batch]
    rows = ["| item table | bytes (items) | bytes (users+items) | ratio | top-10 p50 ms | top-10 p99 ms | batch-1024 users/s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    fp32_bytes = n_items * d * 4
    for label, mod in tables.items():
        rng = np.random.default_rng(0)

        def one(mod=mod, rng=rng) -> None:
            u = users[int(rng.integers(n_users))][None, :]
            s = u @ items.T if mod is None else mod.dot_all(u)
            torch.topk(s[0], 10)

        def many(mod=mod) -> None:
            s = ub @ items.T if mod is None else mod.dot_all(ub)
            torch.topk(s, 10, dim=1)

        with torch.no_grad():
            lat = _timeit(one, reps)
            thr = _timeit(many, 3 if quick else 5)
        nb = fp32_bytes if mod is None else mod.nbytes()
        user_bytes = n_users * d * (4 if mod is None else 1) + (0 if mod is None else n_users * 4)
        if label.startswith("INT4"):
            user_bytes = n_users * (d // 2 + 4)
        rows.append(f"| {label} | {nb:,} | {nb + user_bytes:,} | {fp32_bytes / nb:.1f}x | {np.median(lat):.2f} "
                    f"| {np.percentile(lat, 99):.2f} | {batch / (np.median(thr) / 1e3):,.0f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="mf-torch,ncf,autorec")
    p.add_argument("--skip-accuracy", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lines = ["# Embedding compression (paper 000, 4.2) - measured", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CPU only. "
             "Regenerate: `.venv/bin/python benchmarks/compression.py`.", ""]
    if not a.skip_accuracy:
        models = []
        for m in a.models.split(","):
            try:
                from cinerec.models.base import model_class

                model_class(m)
                models.append(m)
            except Exception as e:  # a model not written yet: say so in the table
                print(f"skipping {m}: {e}", file=sys.stderr)
        lines += ["## ml-latest-small, random 90/10, seed 42", "",
                  "Bytes are the user+item embedding tables only (biases stay fp32); latency is the "
                  "protocol's single-user top-10 over the full catalogue (9,742 items).", ""]
        lines += accuracy_table(models, a.quick) + [""]
    lines += ["## ML-25M shape (162,541 x 62,423 x 64), random weights", "",
              "Latency: one user against the full item table + top-10; throughput: 1024 users per call.", ""]
    lines += ml25m_table(a.quick) + [""]
    lines += ["## Hash collision rate (ids sharing a bucket)", "", "| ids | buckets | hashes | measured | birthday |",
              "|---:|---:|---:|---:|---:|"]
    for n, b, h in ((9742, 2436, 1), (9742, 2436, 2), (62423, 15606, 1)):
        lines.append(f"| {n} | {b} | {h} | {collision_rate(n, b, n_hashes=h):.3f} | {expected_collision_rate(n, b, h):.3f} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
