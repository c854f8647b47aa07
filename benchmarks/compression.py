"""Embedding compression measured (paper 000, 4.2): bytes, ratio, accuracy, latency.

Part 1: each model with factor or embedding tables (mf-torch, ncf, autorec, and the numpy
svd with the methods that need no retraining) is trained ONCE on ml-latest-small (random 90/10, seed 42) and saved; every method then
starts from a fresh load of that artifact, is compressed, saved (bytes on disk) and
evaluated with `cinerec.evaluation.protocol.evaluate(fit=False)`. The control row "FP32 +
N ep." fine-tunes the fp32 model for the same extra epochs as QAT, so the QAT gain is
not just more training.
Part 2: TorchMF-shaped user and item tables at the ML-25M shape (162,541 users x 62,423
items, d = 64 and 128) with RANDOM weights/codes (cost does not depend on the values):
memory, single-user top-10 latency and batch-1024 scoring throughput, all methods
measured round-robin in the same run so machine load hits them alike.

The markdown is rewritten after every row, so an interrupted run leaves a partial table.

Run: CINEREC_DATA=../shared/data .venv/bin/python benchmarks/compression.py
     [--quick] [--models mf-torch,ncf,autorec,svd] [--skip-accuracy] [--skip-ml25m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cinerec.artifacts import artifact_bytes, load_model, save_model
from cinerec.compress.api import (
    TRAINING_METHODS,
    VQ_MIN_ROWS_PER_CENTROID,
    compress_model,
    embedding_bytes,
)
from cinerec.compress.hashing import collision_rate, expected_collision_rate
from cinerec.compress.ptq import QuantizedEmbedding
from cinerec.compress.vq import PQEmbedding, RQEmbedding
from cinerec.data import load_dataset
from cinerec.data.splits import make_split
from cinerec.evaluation.protocol import evaluate
from cinerec.models import create_model
from cinerec.models import tables as tb

OUT = Path(__file__).parent / "results" / "compression.md"
SPLIT, SEED = "random:0.9", 42
#: Extra epochs of every method that trains after the fp32 fit (QAT, PQ codebooks, control).
FT_EPOCHS = 3


def methods(dim: int, lr: float) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(label, method, options); PQ sub-vectors of width 8 (or the nearest divisor).

    Fine-tuning (control, QAT, PQ codebooks) runs at min(model lr, 1e-3): AutoRec's
    own 2e-4 (1e-3 overfits it within 2 epochs), 1e-3 for mf-torch (3e-3) and ncf."""
    m = max(x for x in range(1, dim // 8 + 1) if dim % x == 0)
    ft = {"lr": min(lr, 1e-3)}
    return [
        ("FP32", None, {}),
        (f"FP32 + {FT_EPOCHS} ep. (control)", "finetune", {"epochs": FT_EPOCHS, **ft}),
        ("INT8 PTQ", "int8", {}),
        ("INT4 PTQ", "int4", {}),
        (f"INT4 QAT ({FT_EPOCHS} ep.)", "qat-int4", {"epochs": FT_EPOCHS, **ft}),
        (f"PQ M={m} K=256", "pq", {"subvectors": m, "iters": 15}),
        (f"PQ M={m} + codebook FT ({FT_EPOCHS} ep.)", "pq",
         {"subvectors": m, "iters": 15, "finetune_epochs": FT_EPOCHS, **ft}),
        ("RQ L=2 K=256", "rq", {"stages": 2, "iters": 15}),
        ("Hash n/4 (retrained 5 ep.)", "hash", {"bucket_ratio": 4.0, "epochs": 5}),
        ("QR n/4 mult (retrained 5 ep.)", "qr", {"bucket_ratio": 4.0, "epochs": 5}),
    ]


class Doc:
    """The markdown being written; `flush` rewrites the file (partial runs stay readable)."""

    def __init__(self, header: list[str], path: Path = OUT):
        self.lines = list(header)
        self.path = path

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)
        self.flush()

    def flush(self, done: bool = False) -> None:
        tail = [] if done else ["", "_(run in progress or interrupted: the tables above are partial)_"]
        self.path.write_text("\n".join(self.lines + tail) + "\n")


def _batch_users_per_s(model: Any, n_users: int, reps: int) -> float:
    """Users scored per second by ``model.score`` of 128 users against the full catalogue
    (a subset: scoring all 610 users through NCF's MLP takes ~40 s per call)."""
    users = np.arange(min(n_users, 128))
    model.score(users[:8])  # warm-up (numba compile, caches)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model.score(users)
        times.append(time.perf_counter() - t0)
    return n_users / float(np.median(times))


def accuracy_tables(doc: Doc, models: list[str], quick: bool) -> None:
    ds = load_dataset("ml-latest-small", progress=False)
    split = make_split(ds, SPLIT, seed=SEED)
    prov = {"data": "ml-latest-small", "data_fingerprint": ds.fingerprint, "split": SPLIT, "seed": SEED}
    tmp = Path(tempfile.mkdtemp(prefix="cinerec-compress-bench-"))
    for name in models:
        cfg: dict[str, Any] = {"seed": SEED}
        if quick:
            cfg["epochs"] = 3
        base = create_model(name, cfg)
        if not (getattr(type(base), "embedding_paths", ()) or getattr(type(base), "factor_attrs", {})):
            print(f"skipping {name}: no factor or embedding tables", file=sys.stderr)
            continue
        base.provenance = prov
        t0 = time.perf_counter()
        base.fit(split.train, split.valid, options={"progress": False})
        fit_s = time.perf_counter() - t0
        save_model(base, tmp / name)
        numpy_model = base.table_backend == "numpy"
        # Untimed warm-up so the first (FP32) row does not pay for allocator/thread start-up.
        evaluate(base, split, k=10, fit=False, progress=False, metrics=["rmse", "efficiency"])
        shapes = {p: tb.shape(t) for p, t in base.embedding_tables().items()}
        dim = next(iter(shapes.values()))[1]
        min_rows = VQ_MIN_ROWS_PER_CENTROID * 256
        small = [f"`{p}`" for p, (n, _) in shapes.items() if n < min_rows]
        vq_note = (
            f" PQ/RQ rows: {', '.join(small)} {'stays' if len(small) == 1 else 'stay'} row-wise INT8 "
            f"(fewer than {min_rows:,} rows: 256-centroid codebooks would outweigh the table; `min_rows`)."
            if small else ""
        )
        doc.add(
            f"### {name}", "",
            f"Tables {', '.join(f'`{p}` {n:,} x {d}' for p, (n, d) in shapes.items())}; fp32 fit "
            f"{fit_s:.0f} s ({base.config.epochs} epochs max). Bytes = embedding tables "
            f"(biases and other weights stay fp32); disk = the whole artifact folder.{vq_note}", "",
            "| method | emb. bytes | ratio | artifact on disk | RMSE | MAE | NDCG@10 "
            "| top-10 p50 ms | top-10 p99 ms | predict/s | batch users/s | compress s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        )
        for label, method, opts in methods(dim, float(base.config.lr)):
            if numpy_model and (method in (*TRAINING_METHODS, "finetune") or opts.get("finetune_epochs")):
                continue  # a numpy model does not retrain through the Trainer
            model = load_model(tmp / name)
            t0 = time.perf_counter()
            try:
                if method == "finetune":
                    model.finetune(split.train, None, **opts)
                elif method:
                    compress_model(model, method, train=split.train, **opts)
            except Exception as e:  # one failing method must not lose the others' rows
                doc.add(f"| {label} | failed: {type(e).__name__}: {e} |")
                print(f"{name} {label} failed: {e!r}", file=sys.stderr)
                continue
            took = time.perf_counter() - t0
            out_dir = tmp / f"{name}-{label.split()[0]}-{abs(hash(label)) % 10_000}"
            save_model(model, out_dir)
            rep = evaluate(model, split, k=10, fit=False, progress=False,
                           metrics=["rmse", "mae", "ndcg@10", "efficiency"])
            m = rep.metrics
            b = embedding_bytes(model)
            thr = _batch_users_per_s(model, ds.n_users, 2 if quick else 3)
            doc.add(
                f"| {label} | {b['compressed_bytes']:,} | {b['ratio']:.2f}x | {artifact_bytes(out_dir):,} "
                f"| {m['rmse']:.4f} | {m['mae']:.4f} | {m['ndcg@10']:.4f} | {m['topk_p50_ms']:.2f} "
                f"| {m['topk_p99_ms']:.2f} | {m['predict_per_s']:,.0f} | {thr:,.0f} | {took:.1f} |"
            )
            print(name, doc.lines[-1], flush=True)
        doc.add("")


def _random_tables(n: int, d: int, g: torch.Generator) -> dict[str, torch.nn.Module | torch.Tensor]:
    """One table of n x d in every format (random values/codes: cost is value-independent)."""
    w = torch.randn(n, d, generator=g) * 0.1
    m = d // 8
    pq, rq = PQEmbedding(n, d, m, 256), RQEmbedding(n, d, 2, 256)
    with torch.no_grad():
        for mod in (pq, rq):
            mod.codes.copy_(torch.randint(0, 256, mod.codes.shape, generator=g).to(torch.uint8))
            mod.codebooks.copy_(torch.randn(mod.codebooks.shape, generator=g).half() * 0.1)
    return {"FP32": w, "INT8": QuantizedEmbedding.from_float(w, 8),
            "INT4": QuantizedEmbedding.from_float(w, 4), f"PQ M={m}": pq, "RQ L=2": rq}


def ml25m_table(doc: Doc, d: int, quick: bool) -> None:
    n_users, n_items, batch = 162_541, 62_423, 1024
    g = torch.Generator().manual_seed(0)
    items = _random_tables(n_items, d, g)
    users = _random_tables(n_users, d, g)
    rng = np.random.default_rng(0)

    def score(label: str, idx: torch.Tensor) -> torch.Tensor:
        u, it = users[label], items[label]
        uv = u[idx] if isinstance(u, torch.Tensor) else u(idx)
        s = uv @ it.T if isinstance(it, torch.Tensor) else it.dot_all(uv)
        return torch.topk(s, 10, dim=1).indices

    rounds, single_reps, batch_reps = (2, 20, 1) if quick else (4, 50, 2)
    lat: dict[str, list[float]] = {k: [] for k in items}
    thr: dict[str, list[float]] = {k: [] for k in items}
    with torch.no_grad():
        for label in items:  # warm-up: numba compile, allocator
            score(label, torch.tensor([0]))
            score(label, torch.arange(batch))
        for _ in range(rounds):  # round-robin so load changes hit every method alike
            for label in items:
                for _ in range(single_reps):
                    idx = torch.tensor([int(rng.integers(n_users))])
                    t0 = time.perf_counter()
                    score(label, idx)
                    lat[label].append((time.perf_counter() - t0) * 1e3)
                for _ in range(batch_reps):
                    idx = torch.from_numpy(rng.integers(0, n_users, batch))
                    t0 = time.perf_counter()
                    score(label, idx)
                    thr[label].append(batch / (time.perf_counter() - t0))
    fp32_items = n_items * d * 4
    fp32_all = (n_users + n_items) * d * 4

    def nbytes(t: torch.nn.Module | torch.Tensor) -> int:
        return t.numel() * 4 if isinstance(t, torch.Tensor) else t.nbytes()

    doc.add(
        f"### d = {d}", "",
        "| tables | item bytes | users+items bytes | ratio | top-10 p50 ms | top-10 p99 ms "
        "| batch-1024 users/s (median) | vs FP32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    )
    base_thr = float(np.median(thr["FP32"]))
    for label in items:
        nb_i, nb_all = nbytes(items[label]), nbytes(items[label]) + nbytes(users[label])
        t = float(np.median(thr[label]))
        doc.add(
            f"| {label} | {nb_i:,} | {nb_all:,} | {fp32_all / nb_all:.1f}x | {np.median(lat[label]):.2f} "
            f"| {np.percentile(lat[label], 99):.2f} | {t:,.0f} | {t / base_thr:.2f}x |"
        )
        print(doc.lines[-1], flush=True)
    assert fp32_items == nbytes(items["FP32"])
    doc.add("")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 fp32 epochs, fewer timing reps")
    p.add_argument("--models", default="mf-torch,ncf,autorec,svd")
    p.add_argument("--dims", default="64,128", help="embedding widths of the ML-25M part")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-ml25m", action="store_true")
    p.add_argument("--out", type=Path, default=OUT, help="markdown file to write")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: on the shared 2-core machine a "
                        "2-thread op waits for the busy core; a PQ lookup of 8,192 rows took "
                        "46 ms with 2 threads vs 2 ms with 1)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    doc = Doc([
        "# Embedding compression (paper 000, 4.2) - measured", "",
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CPU only, on a shared "
        f"machine (timings are noisy){' - QUICK run' if a.quick else ''}. Regenerate: "
        "`CINEREC_DATA=../shared/data .venv/bin/python benchmarks/compression.py`.", "",
    ], a.out)
    if not a.skip_ml25m:
        doc.add("## ML-25M shape (162,541 users x 62,423 items), random weights", "",
                "Both tables in the given format. Latency: one user row looked up and scored "
                "against every item + top-10; throughput: 1,024 random users per call "
                "(lookup + score + top-10). Methods interleaved round-robin in one run.", "")
        for d in (int(x) for x in a.dims.split(",")):
            ml25m_table(doc, d, a.quick)
    if not a.skip_accuracy:
        from cinerec.models.registry import model_class

        models = []
        for m in a.models.split(","):
            try:
                model_class(m)
                models.append(m)
            except Exception as e:  # a model not registered: say so
                print(f"skipping {m}: {e}", file=sys.stderr)
        doc.add(f"## ml-latest-small, {SPLIT} seed {SEED}", "",
                "Metrics from `evaluate(fit=False)` on the test part; top-10 latency = the "
                "protocol's single-user top-10 over the full catalogue (9,742 items); batch "
                "users/s = `model.score` of 128 users in one call.", "")
        accuracy_tables(doc, models, a.quick)
    doc.add("## Hash collision rate (ids sharing a bucket)", "",
            "| ids | buckets | hashes | measured | birthday |", "|---:|---:|---:|---:|---:|")
    for n, b, h in ((9742, 2436, 1), (9742, 2436, 2), (62423, 15606, 1)):
        doc.add(f"| {n} | {b} | {h} | {collision_rate(n, b, n_hashes=h):.3f} "
                f"| {expected_collision_rate(n, b, h):.3f} |")
    doc.flush(done=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
