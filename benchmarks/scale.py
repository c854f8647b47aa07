"""25M ratings end to end on this machine: load, split, fit, full-catalogue evaluation.

A synthetic release of the ML-25M shape (25,000,000 ratings, 162,541 users, 62,423
movies; `cinerec.data.synthetic`) is written once to the work folder; then every stage
runs in a fresh process, so each row's peak RSS (from ``os.wait4``) is that stage's own
(data loaded from the warm cache included):

- load cold (parse the CSVs, build, write the cache) and warm (the cache);
- the random 90/10 split;
- ``svd`` (100 factors, 20 epochs) fit, then the full evaluation (RMSE on every test
  row; ranking every test user over all 62k movies minus their training ones);
- ``als`` (50 factors, 10 epochs) fit and RMSE; ``ease`` (its dense item x item inverse
  does not fit: the refusal is the row); ``mf-torch`` one epoch in 1 process and in 2
  (``cinerec train --nproc 2``, DDP over gloo);
- with ``--device cuda``: one epoch of ``mf-torch`` and ``ncf`` on the GPU, fp32 and with
  mixed precision (autocast; on a CPU device both rows run fp32).

Goal of the scale-out issue: load + split + svd fit + full evaluation under 3 minutes
and 8 GB. Writes results/scale.md.

    .venv/bin/python benchmarks/scale.py [--ratings 25M] [--work /tmp/cinerec-scale]
    .venv/bin/python benchmarks/scale.py --device cuda --out benchmarks/results/scale-gpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "scale.md"

_CHILD = r"""
import json, sys, time
stage, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
info = {}
t0 = time.perf_counter()
if stage == "generate":
    from cinerec.data.synthetic import generate
    n_r, n_u, n_i = (int(x) for x in sys.argv[4].split(","))
    generate(data, n_r, n_u, n_i, seed=0, progress=False)
    info["seconds"] = time.perf_counter() - t0
else:
    from cinerec.data import load_dataset
    ds = load_dataset(data, progress=False)
    info["n_ratings"] = ds.n_ratings
    info["load_s"] = time.perf_counter() - t0
    if stage in ("load-cold", "load-warm"):
        info["checksum"] = float(ds.ratings.sum(dtype="float64"))
        info["seconds"] = time.perf_counter() - t0
    else:
        from cinerec.data.splits import make_split
        t = time.perf_counter()
        split = make_split(ds, "random:0.9", seed=42)
        info["split_s"] = time.perf_counter() - t
        if stage == "split":
            info["seconds"] = info["split_s"]
        else:
            import numpy as np
            from cinerec.errors import ConfigError
            from cinerec.evaluation.protocol import evaluate
            from cinerec.models.registry import create_model
            # "MODEL" on the CPU, or "MODEL@DEVICE/amp|fp32" (a torch model, one epoch)
            name, _, run = stage.partition("@")
            device, _, precision = run.partition("/")
            fit_options = {"progress": False}
            if device:
                fit_options |= {"device": device, "mixed_precision": precision == "amp"}
                info["device"] = device
                info["precision"] = precision
                if device.startswith("cuda"):
                    import torch
                    info["gpu"] = torch.cuda.get_device_name(torch.device(device))
            one_epoch = {"epochs": 1, "early_stopping_patience": None}
            params = {"svd": {"n_factors": 100, "epochs": 20}, "als": {"n_factors": 50, "epochs": 10},
                      "ease": {}, "mf-torch": one_epoch, "ncf": one_epoch}[name]
            model = create_model(name, params)
            t = time.perf_counter()
            try:
                model.fit(split.train, options=fit_options)
            except ConfigError as e:
                info["refused"] = str(e)
            info["fit_s"] = time.perf_counter() - t
            if "refused" not in info and model.predicts_ratings:
                test = split.test
                pred = model.predict(test.users, test.items)
                info["rmse"] = float(np.sqrt(np.mean((pred - test.ratings) ** 2)))
                if stage == "svd":
                    t = time.perf_counter()
                    rep = evaluate(model, split, k=10, fit=False, progress=False, latency_samples=50)
                    info["eval_s"] = time.perf_counter() - t
                    info["ndcg@10"] = rep.metrics.get("ndcg@10")
                    info["n_rank_users"] = rep.metrics.get("n_rank_users")
            info["seconds"] = time.perf_counter() - t0
open(out, "w").write(json.dumps(info))
"""


def stage_file(stage: str) -> str:
    """The JSON file a stage's result is kept in (device rows name a precision after a '/')."""
    return stage.replace("/", "+") + ".json"


def run_stage(stage: str, data: Path, env: dict[str, str], work: Path, *extra: str, timeout: float = 3600) -> dict:
    out = work / stage_file(stage)
    t = time.perf_counter()
    if stage == "mf-torch-2":
        cmd = [sys.executable, "-m", "cinerec", "train", "mf-torch", "--data", str(data), "--set", "epochs=1",
               "--set", "early_stopping_patience=null", "--no-evaluate", "--quiet", "--force",
               "--out", str(work / "mf2"), "--nproc", "2"]
    else:
        cmd = [sys.executable, "-c", _CHILD, stage, str(data), str(out), *extra]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t > timeout:  # a stage past its budget is a row, not a wait
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            return {"wall_s": time.perf_counter() - t, "peak_rss_mb": usage.ru_maxrss / 1024,
                    "timeout_s": timeout}
        time.sleep(0.2)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed (exit {os.waitstatus_to_exitcode(status)})")
    info = json.loads(out.read_text()) if out.exists() and stage != "mf-torch-2" else {"seconds": wall}
    info["wall_s"] = wall
    info["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux; the largest child for torchrun
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratings", type=int, default=25_000_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/cinerec-scale"))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--stages", default="load-cold,load-warm,split,svd,als,ease,mf-torch,mf-torch-2")
    p.add_argument("--device", help="cuda | cuda:N | cpu: instead of --stages, one epoch of mf-torch and ncf "
                   "on that device with mixed precision on and off (rows MODEL@DEVICE/amp|fp32)")
    p.add_argument("--stage-timeout", type=float, default=900, help="seconds before a stage is stopped")
    p.add_argument("--report-only", action="store_true", help="write the table from the stages already run")
    args = p.parse_args()
    n_r = args.ratings
    n_u, n_i = round(n_r * 162_541 / 25_000_095), round(n_r * 62_423 / 25_000_095)
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"synthetic-{n_r}"
    env = dict(os.environ, CINEREC_CACHE=str(args.work / "cache"))
    done = args.work / f"stages-{n_r}"  # one JSON per finished stage: a later run adds to them
    done.mkdir(exist_ok=True)
    if args.device:
        args.stages = ",".join(f"{m}@{args.device}/{prec}" for m in ("mf-torch", "ncf") for prec in ("fp32", "amp"))
    order = ["generate", *p.get_default("stages").split(","), *args.stages.split(",")]
    order = list(dict.fromkeys(order))
    if not args.report_only:
        if not (data / "ratings.csv").exists():
            r = run_stage("generate", data, env, args.work, f"{n_r},{n_u},{n_i}")
            (done / "generate.json").write_text(json.dumps(r))
            print(f"  generated {n_r:,} ratings in {r['seconds']:.0f} s", flush=True)
        for stage in args.stages.split(","):
            if stage == "load-cold":
                import shutil

                shutil.rmtree(args.work / "cache", ignore_errors=True)
            r = run_stage(stage, data, env, args.work, timeout=args.stage_timeout)
            (done / stage_file(stage)).write_text(json.dumps(r))
            print(f"  {stage:12s} {r['wall_s']:7.1f} s wall  peak {r['peak_rss_mb']:,.0f} MB  "
                  + json.dumps({k: v for k, v in r.items() if k not in ('wall_s', 'peak_rss_mb')}), flush=True)
    rows = [(s, json.loads((done / stage_file(s)).read_text())) for s in order if (done / stage_file(s)).exists()]
    write(args, rows, n_r, n_u, n_i)


def write(args, rows, n_r, n_u, n_i) -> None:
    got = dict(rows)
    gpus = sorted({r["gpu"] for _, r in rows if "gpu" in r})
    command = f"`.venv/bin/python benchmarks/scale.py --ratings {n_r}" + (f" --device {args.device}`" if args.device else "`")
    lines = [
        "# 25M ratings end to end - measured" if not args.device else f"# One epoch on {args.device} - measured", "",
        f"{platform.machine()}, {os.cpu_count()} cores{''.join(', ' + g for g in gpus)}; synthetic release of the ML-25M shape ({n_r:,} ratings, "
        f"{n_u:,} users, {n_i:,} movies), random 90/10 split seed 42. Each row is a fresh process: its time "
        "inside the process and its peak RSS (the warm-cache load of the data included); `MODEL@DEVICE/amp` "
        f"rows autocast (CUDA only), `/fp32` rows do not. Regenerate: {command}.", "",
        "| stage | wall s | stage s | peak RSS MB | result |", "|---|---:|---:|---:|---|",
    ]
    for stage, r in rows:
        own = r.get("fit_s", r.get("seconds", 0.0))
        result = []
        if "rmse" in r:
            result.append(f"test RMSE {r['rmse']:.4f}")
        if "eval_s" in r:
            result.append(f"full evaluation {r['eval_s']:.1f} s, NDCG@10 {r['ndcg@10']:.4f} over "
                          f"{r['n_rank_users']:,} users")
        if "refused" in r:
            result.append("refused: " + r["refused"].split(";")[0])
        if "timeout_s" in r:
            result.append(f"stopped after {r['timeout_s']:.0f} s, not finished")
        rss = "-" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:,.0f}"
        lines.append(f"| {stage} | {r['wall_s']:.1f} | {own:.1f} | {rss} | {'; '.join(result)} |")
    if "svd" in got and "load-warm" in got:
        s = got["svd"]
        total = s["load_s"] + s["split_s"] + s["fit_s"] + s.get("eval_s", 0.0)
        lines += ["", f"Load (warm) + split + svd fit + full evaluation: {total:.0f} s, peak {s['peak_rss_mb']:,.0f} MB "
                  f"(goal: under 180 s and 8,192 MB: {'met' if total < 180 and s['peak_rss_mb'] < 8192 else 'missed'})."]
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
