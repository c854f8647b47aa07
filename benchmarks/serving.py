"""Load, fault and bad-input test of `cinerec serve`, loopback only -> results/serving.md.

One server process serves svd and ease (ml-latest-small, random:0.9 seed 42) and an
INT8 mf-torch at the ML-25M shape (162,541 users x 62,423 movies, synthetic; fitted one
epoch on a 2M-rating sample of that shape: serving cost depends on the table sizes,
not on how long the model trained). wrk (Debian's) drives REST; h2load (Debian's
nghttp2-client, a C HTTP/2 client) drives gRPC with raw gRPC frames, and REST again over
HTTP/1.1, so that gRPC and REST are compared with the same client. h2load sends the same
body every time (one user: 7) and reports no percentiles, only mean and max.

    CINEREC_DATA=../shared/data .venv/bin/python benchmarks/serving.py [--duration 8]

Everything runs on one 2-core machine: the load generator takes CPU from the server,
so every figure here is a lower bound of what the server does on its own cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serving.server_process import free_port, serving  # noqa: E402

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "serving.md"
KEY = "bench-key"
CONCURRENCY = (1, 16, 64)

WRK_LUA = """
local users = {%(users)s}
local path = "%(path)s"
math.randomseed(7)
request = function()
  local u = users[math.random(#users)]
  return wrk.format("GET", (path:gsub("{user}", tostring(u))))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('@@{"requests": %%d, "seconds": %%f, "p50": %%f, "p95": %%f, "p99": %%f, "non2xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def prepare(folder: Path, skip_25m: bool) -> dict[str, Path]:
    from cinerec import artifacts, experiment
    from cinerec.compress.api import compress_model
    from cinerec.data.synthetic.output import generate_dataset
    from cinerec.models.registry import create_model

    out = {}
    ctx = experiment.load_context("ml-latest-small", "random:0.9", 42, progress=False)
    names = ("svd", "ease") + (() if skip_25m else ("mf-int8-25m",))
    if all(artifacts.is_artifact(folder / n) for n in names):
        return {n: folder / n for n in names}
    for name in ("svd", "ease"):
        experiment.train(name, ctx, out=folder / name, evaluate_after=False, progress=False, overwrite=True)
        out[name] = folder / name
    if not skip_25m:
        t = time.perf_counter()
        ds = generate_dataset(2_000_000, 162_541, 62_423, seed=0, progress=False)
        model = create_model("mf-torch", epochs=1).fit(ds)
        compress_model(model, "int8")
        artifacts.save_model(model, folder / "mf-int8-25m", overwrite=True)
        out["mf-int8-25m"] = folder / "mf-int8-25m"
        print(f"  ML-25M-shape mf-torch INT8 ready in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def wrk(url: str, path: str, users: np.ndarray, conc: int, seconds: float, method_lua: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(method_lua or WRK_LUA % {"users": ",".join(map(str, users.tolist())), "path": path})
        script = f.name
    try:
        res = subprocess.run(
            ["wrk", "-t1", f"-c{conc}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", script, url],
            capture_output=True, text=True, timeout=seconds + 30,
        )
    finally:
        os.unlink(script)
    line = next((x for x in res.stdout.splitlines() if x.startswith("@@")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {res.stdout}\n{res.stderr}")
    d = json.loads(line[2:])
    d["rps"] = d["requests"] / d["seconds"]
    return d


def h2load(url: str, conc: int, seconds: float, grpc_body: bytes | None = None) -> dict:
    """h2load against ``url``: HTTP/1.1 when ``grpc_body`` is None, else gRPC unary calls
    (HTTP/2, ``grpc_body`` framed as a gRPC message)."""
    cmd = ["h2load", "-D", str(max(1, round(seconds))), "-c", str(conc), "-t", "1", "-m", "1"]
    data = None
    if grpc_body is None:
        cmd.append("--h1")
    else:
        with tempfile.NamedTemporaryFile("wb", suffix=".bin", delete=False) as f:
            f.write(b"\x00" + struct.pack(">I", len(grpc_body)) + grpc_body)
            data = f.name
        cmd += ["-d", data, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    try:
        res = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 30)
    finally:
        if data:
            os.unlink(data)
    out = res.stdout
    fin = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    req = re.search(r"requests: (\d+) total.*?(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    lat = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    if not (fin and req and lat):
        raise RuntimeError(f"h2load failed: {out}\n{res.stderr}")
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"rps": float(fin.group(2)), "requests": int(req.group(1)),
            "errors": int(req.group(3)) + int(req.group(4)),
            "mean": float(lat.group(5)) * unit[lat.group(6)], "max": float(lat.group(3)) * unit[lat.group(4)]}


def reload_under_load(url: str, users: np.ndarray, seconds: float) -> dict:
    done = threading.Event()
    reloads = []

    def reloader() -> None:
        time.sleep(1.0)
        while not done.is_set():
            r = httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": KEY}, timeout=60)
            reloads.append(r.status_code)
            time.sleep(0.5)

    th = threading.Thread(target=reloader)
    th.start()
    try:
        res = wrk(url, "/v1/recommendations?user={user}&model=svd", users, 16, seconds)
    finally:
        done.set()
        th.join()
    res["reloads"] = len(reloads)
    res["reload_failures"] = sum(s != 200 for s in reloads)
    return res


def crash_test(models: dict[str, Path], workdir: Path) -> dict:
    from cinerec.serving.store import FeedbackStore

    db = workdir / "crash.db"
    acked, lock, killed = [], threading.Lock(), threading.Event()
    args = [f"svd={models['svd']}", "--db", str(db), "--api-key", KEY, "--no-access-log"]
    with serving(args) as (url, proc):
        client = httpx.Client(base_url=url, timeout=10.0, headers={"X-API-Key": KEY})

        def write(n: int) -> None:
            row = {"user": 900_000 + n, "movieId": 1, "rating": 4.0, "timestamp": 10 + n}
            try:
                r = client.post("/v1/ratings", json=row)
            except httpx.HTTPError:
                return
            if r.status_code == 201:
                with lock:
                    acked.append((row["user"], row["timestamp"]))
                    if len(acked) == 30:
                        proc.send_signal(signal.SIGKILL)
                        killed.set()

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(write, range(100)))
        proc.wait(timeout=10)
    with FeedbackStore.open(db) as store:
        stored = {(int(u), int(t)) for u in store.users_with_feedback() for t in store.history(int(u))[2]}
    return {"sent": 100, "acknowledged": len(acked), "present_after_restart": len(set(acked) & stored),
            "rows_in_store": len(stored), "killed": killed.is_set()}


BAD_REQUESTS = [
    ("user is not a number", "GET", "/v1/recommendations?user=abc", None),
    ("unknown user", "GET", "/v1/recommendations?user=99999999", None),
    ("user beyond int64", "GET", "/v1/recommendations?user=999999999999999999999999", None),
    ("negative k", "GET", "/v1/recommendations?user=1&k=-1", None),
    ("k = 10^6", "GET", "/v1/recommendations?user=1&k=1000000", None),
    ("k not a number", "GET", "/v1/recommendations?user=1&k=ten", None),
    ("risk_aversion NaN", "GET", "/v1/recommendations?user=1&risk_aversion=nan", None),
    ("unknown model", "GET", "/v1/recommendations?user=1&model=nope", None),
    ("unknown movie (similar)", "GET", "/v1/items/999999999/similar", None),
    ("SQL metacharacters in search", "GET", "/v1/items?search=%27%3B%20DROP%20TABLE%20ratings%3B%20--", None),
    ("10,000-character search", "GET", "/v1/items?search=" + "a" * 10_000, None),
    ("invalid JSON", "POST", "/v1/recommendations", b"{not json"),
    ("wrong type in history", "POST", "/v1/recommendations", b'{"history": [{"movieId": 1, "rating": "five"}]}'),
    ("rating off the scale", "POST", "/v1/recommendations", b'{"history": [{"movieId": 1, "rating": 50}]}'),
    ("unknown movie in history", "POST", "/v1/recommendations", b'{"history": [{"movieId": 999999999, "rating": 4}]}'),
    ("unknown field", "POST", "/v1/recommendations", b'{"histroy": []}'),
    ("10 MB body", "POST", "/v1/recommendations", b'{"history": [' + b" " * 10_000_000 + b"]}"),
    ("rating without API key", "POST", "/v1/ratings", b'{"user": 1, "movieId": 1, "rating": 4}'),
    ("deeply nested JSON", "POST", "/v1/recommendations", b"[" * 50_000 + b"]" * 50_000),
    ("wrong method", "DELETE", "/v1/recommendations", None),
]


def bad_inputs(url: str) -> list[tuple[str, str, int, str]]:
    out = []
    with httpx.Client(base_url=url, timeout=30.0) as c:
        for what, method, path, body in BAD_REQUESTS:
            r = c.request(method, path, content=body,
                          headers={"content-type": "application/json"} if body is not None else {})
            try:
                code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else r.json().get("basis", "")
            except ValueError:
                code = "(not JSON)"
            out.append((what, f"{method} {path[:60]}", r.status_code, code))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    p.add_argument("--skip-25m", action="store_true", help="leave out the ML-25M-shape model")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the artifacts; reused when it already holds them")
    args = p.parse_args()
    for tool, package in (("wrk", "wrk"), ("h2load", "nghttp2-client")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install -y {package}")
    work = args.work or Path(tempfile.mkdtemp(prefix="cinerec-serving-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print("preparing artifacts ...", flush=True)
    models = prepare(work, args.skip_25m)
    grpc_port = free_port()
    serve_args = [f"{n}={p}" for n, p in models.items()] + [
        "--db", str(work / "feedback.db"), "--api-key", KEY, "--grpc-port", str(grpc_port), "--no-access-log"]
    rows, grpc_rows = [], []
    rng = np.random.default_rng(0)
    with serving(serve_args, log=work / "server.log", timeout=300) as (url, proc):
        small_users = rng.integers(1, 611, 2000)
        targets = [("trivial /ping", "/ping", small_users)]
        targets += [(f"{n} /v1/recommendations", f"/v1/recommendations?user={{user}}&model={n}", small_users)
                    for n in ("svd", "ease")]
        if "mf-int8-25m" in models:
            targets.append(("mf-torch INT8 (ML-25M shape)", "/v1/recommendations?user={user}&model=mf-int8-25m",
                            rng.integers(1, 162_000, 2000)))
        for what, path, users in targets:
            wrk(url, path, users, 4, 1.0)  # warm-up
            for conc in CONCURRENCY:
                r = wrk(url, path, users, conc, args.duration)
                rows.append((what, conc, r))
                print(f"  {what:32s} c={conc:3d}  {r['rps']:8.0f} req/s  p50 {r['p50']:.2f}  p99 {r['p99']:.2f} ms"
                      f"  errors {r['non2xx'] + r['socket_errors']}", flush=True)
        from cinerec.serving.grpc import cinerec_pb2 as pb
        from cinerec.serving.grpc.client import RecommenderClient

        with RecommenderClient(f"127.0.0.1:{grpc_port}") as client:  # the frames h2load sends work
            assert client.ping() and len(client.recommend(7, k=10, model="svd")["items"]) == 10
        grpc_url = f"http://127.0.0.1:{grpc_port}/cinerec.v1.Recommender/"
        same_client = [
            ("gRPC", "trivial Ping", grpc_url + "Ping", pb.PingRequest().SerializeToString()),
            ("gRPC", "svd Recommend", grpc_url + "Recommend",
             pb.RecommendRequest(user=7, k=10, model="svd").SerializeToString()),
            ("REST", "trivial /ping", f"{url}/ping", None),
            ("REST", "svd /v1/recommendations", f"{url}/v1/recommendations?user=7&k=10&model=svd", None),
        ]
        for proto, what, target, body in same_client:
            for conc in CONCURRENCY:
                r = h2load(target, conc, args.duration, body)
                grpc_rows.append((proto, what, conc, r))
                print(f"  h2load {proto} {what:24s} c={conc:3d}  {r['rps']:8.0f} req/s  mean {r['mean']:.2f} ms"
                      f"  errors {r['errors']}", flush=True)
        reload_res = reload_under_load(url, small_users, args.duration)
        print(f"  reload under load: {reload_res['reloads']} reloads, "
              f"{reload_res['non2xx'] + reload_res['socket_errors']} failed requests", flush=True)
        bad = bad_inputs(url)
        metrics = httpx.get(f"{url}/metrics").text
    if "mf-int8-25m" in models:  # the large catalogue again, through an HNSW index
        what = "mf-torch INT8 (ML-25M shape), HNSW"
        hnsw_args = [f"mf-int8-25m={models['mf-int8-25m']}", "--db", "none", "--index", "hnsw", "--no-access-log"]
        with serving(hnsw_args, log=work / "server-hnsw.log", timeout=300) as (url2, _):
            users = rng.integers(1, 162_000, 2000)
            wrk(url2, "/ping", users, 4, 1.0)
            for conc in CONCURRENCY:
                r = wrk(url2, "/ping", users, conc, args.duration)
                rows.append(("trivial /ping (HNSW server)", conc, r))
            path = "/v1/recommendations?user={user}&model=mf-int8-25m"
            wrk(url2, path, users, 4, 1.0)
            for conc in CONCURRENCY:
                r = wrk(url2, path, users, conc, args.duration)
                rows.append((what, conc, r))
                print(f"  {what:32s} c={conc:3d}  {r['rps']:8.0f} req/s  p50 {r['p50']:.2f}  p99 {r['p99']:.2f} ms"
                      f"  errors {r['non2xx'] + r['socket_errors']}", flush=True)
    crash = crash_test(models, work)
    print(f"  crash: {crash}", flush=True)
    write_report(args, rows, grpc_rows, reload_res, bad, crash, metrics)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def write_report(args, rows, grpc_rows, reload_res, bad, crash, metrics) -> None:
    import platform

    ceiling = {c: r["rps"] for w, c, r in rows if w == "trivial /ping"}
    ceiling_hnsw = {c: r["rps"] for w, c, r in rows if w == "trivial /ping (HNSW server)"}

    def ceiling_of(what: str) -> dict[int, float]:
        return ceiling_hnsw if "HNSW" in what else ceiling

    lines = [
        "# Serving (`cinerec serve`) - measured",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores shared by the server and the load generator, loopback. "
        f"wrk -t1, {args.duration:g} s per run, random users per request. Regenerate: "
        "`CINEREC_DATA=../shared/data .venv/bin/python benchmarks/serving.py`.",
        "",
        "## REST (wrk)",
        "",
        "| endpoint | concurrency | requests/s | vs trivial | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for what, conc, r in rows:
        lines.append(f"| {what} | {conc} | {r['rps']:,.0f} | {r['rps'] / ceiling_of(what)[conc]:.2f} | {r['p50']:.2f} | "
                     f"{r['p95']:.2f} | {r['p99']:.2f} | {r['non2xx'] + r['socket_errors']} |")
    lines += ["", "## gRPC and REST with the same client (h2load, user 7)", "",
              "| protocol | call | concurrency | requests/s | vs its trivial call | mean ms | max ms | errors |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    hceil = {(p, c): r["rps"] for p, w, c, r in grpc_rows if w.startswith("trivial")}
    for proto, what, conc, r in grpc_rows:
        lines.append(f"| {proto} | {what} | {conc} | {r['rps']:,.0f} | {r['rps'] / hceil[proto, conc]:.2f} | "
                     f"{r['mean']:.2f} | {r['max']:.2f} | {r['errors']} |")
    svd = {(p, c): r["rps"] for p, w, c, r in grpc_rows if w.startswith("svd")}
    lines += ["", "gRPC svd / REST svd, same client: "
              + ", ".join(f"c={c}: {svd['gRPC', c] / svd['REST', c]:.2f}" for c in CONCURRENCY)
              + " (target >= 1: " + ("met" if all(svd["gRPC", c] >= svd["REST", c] for c in CONCURRENCY)
                                    else "missed") + ")", ""]
    lines += ["## Faults", "",
              f"- kill -9 with 100 feedback writes in flight (32 client threads): {crash['acknowledged']} acknowledged "
              f"before the kill, {crash['present_after_restart']} of them present after restart "
              f"({crash['rows_in_store']} rows stored in all).",
              f"- reload under load (wrk c=16, svd, {args.duration:g} s): {reload_res['reloads']} reloads "
              f"({reload_res['reload_failures']} failed), {reload_res['requests']:,} requests, "
              f"{reload_res['non2xx'] + reload_res['socket_errors']} failed, p99 {reload_res['p99']:.2f} ms.", "",
              "## Bad input", "", "| request | sent | status | code / basis |", "|---|---|---:|---|"]
    for what, sent, status, code in bad:
        lines.append(f"| {what} | `{sent}` | {status} | {code} |")
    n5 = sum(s >= 500 for _, _, s, _ in bad)
    lines += ["", f"5xx answers: {n5}.", ""]
    coalesced = {x.split()[0]: float(x.split()[1]) for x in metrics.splitlines()
                 if x.startswith("cinerec_coalesced_")}
    n_req, n_batch = coalesced.get("cinerec_coalesced_requests", 0), coalesced.get("cinerec_coalesced_batches", 0)
    lines += ["## Coalescing (from /metrics)", "",
              f"{n_req:,.0f} single recommendation requests (REST and gRPC) were answered in {n_batch:,.0f} "
              f"batched calls: {n_req / max(n_batch, 1):.1f} requests per batch on average.", ""]
    lines += ["## Targets", ""]
    for what in sorted({w for w, _, _ in rows if not w.startswith("trivial")}):
        ratios = {c: r["rps"] / ceiling_of(what)[c] for w, c, r in rows if w == what}
        p99 = next(r["p99"] for w, c, r in rows if w == what and c == 16)
        lines.append(f"- {what}: throughput vs trivial "
                     + ", ".join(f"c={c} {v:.2f}" for c, v in ratios.items())
                     + f" (target >= 0.5: {'met' if min(ratios.values()) >= 0.5 else 'missed'}); "
                     f"p99 at c=16 {p99:.1f} ms (target <= 25: {'met' if p99 <= 25 else 'missed'})")
    lines.append("")
    load = [x for x in metrics.splitlines() if x.startswith("cinerec_model_load_seconds{")]
    lines += ["## Model load time (from /metrics)", ""] + [f"    {x}" for x in load] + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
