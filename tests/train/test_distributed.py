"""Data-parallel training in a real 2-process gloo group on this machine.

One spawn of two processes runs every scenario (a process group costs seconds to start):
plain all-reduce, fp16 and PowerSGD compression, and a checkpointed run that a single
process then resumes. Each rank writes what it saw to a JSON file; the tests read them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from tests.net import free_port  # noqa: E402

from cinerec.errors import ConfigError  # noqa: E402
from cinerec.models.registry import create_model  # noqa: E402
from cinerec.testing.data import make_ratings_dataset  # noqa: E402

CONFIG = {"epochs": 4, "batch_size": 128, "n_factors": 8, "lr": 0.01, "seed": 3}


def _data():
    full = make_ratings_dataset(n_users=300, n_items=120, density=0.15, rank=3, seed=11, noise=0.3)
    rng = np.random.default_rng(0)
    test = rng.random(full.n_ratings) < 0.2
    return full.subset(~test, name="train"), full.subset(test, name="valid")


def _fit(train, valid, config=CONFIG, **options):
    return create_model("mf-torch", config).fit(train, valid, options={"progress": False, **options})


def _rmse(model, valid) -> float:
    return float(np.sqrt(np.mean((model.predict(valid.users, valid.items) - valid.ratings) ** 2)))


def _digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.module_.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        train, valid = _data()
        res = {}
        for hook in ("none", "fp16", "powersgd"):
            m = _fit(train, valid, comm_hook=hook)
            res[hook] = {"rmse": _rmse(m, valid), "digest": _digest(m), "bytes": m.history_.comm_bytes,
                         "train_loss": m.history_.train_loss}
        # Tables of 3 and 1.2 MB: DDP splits the gradients into several buckets (PowerSGD on gloo
        # hung with two buckets in flight before `distributed.wrap` kept it to one).
        big = _fit(train, valid, {**CONFIG, "epochs": 2, "n_factors": 2500}, comm_hook="powersgd")
        res["powersgd_big"] = {"digest": _digest(big), "epochs": len(big.history_.epoch)}
        try:
            _fit(train, valid, comm_hook="bf16")
        except ConfigError as e:
            res["bf16_on_gloo"] = str(e)
        m = _fit(train, valid, {**CONFIG, "epochs": 2}, checkpoint_dir=str(Path(out) / "ckpt"))
        res["checkpointed"] = {"digest": _digest(m)}
        Path(out, f"rank{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[dict, dict, Path]:
    out = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(2, free_port(), str(out)), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 300
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:  # a hang in a collective: fail, do not wait for ever
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the 2-process group did not finish within 300 s")
    a, b = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    return a, b, out


def test_two_processes_reach_the_single_process_result(two_ranks) -> None:
    a, _, _ = two_ranks
    train, valid = _data()
    single = _fit(train, valid)
    # Each step averages the gradient of the batch one process would take: the same
    # trajectory up to the order of floating-point sums.
    assert abs(a["none"]["rmse"] - _rmse(single, valid)) < 2e-3, (a["none"]["rmse"], _rmse(single, valid))
    np.testing.assert_allclose(a["none"]["train_loss"], single.history_.train_loss, rtol=1e-3)


def test_parameters_are_identical_on_every_rank(two_ranks) -> None:
    a, b, _ = two_ranks
    for run in ("none", "fp16", "powersgd", "powersgd_big", "checkpointed"):
        assert a[run]["digest"] == b[run]["digest"], run


def test_compression_hooks_cut_the_bytes_sent(two_ranks) -> None:
    a, _, _ = two_ranks
    plain, fp16, psgd = (sum(a[h]["bytes"]) for h in ("none", "fp16", "powersgd"))
    assert plain > 0 and len(a["none"]["bytes"]) == CONFIG["epochs"]
    assert fp16 == pytest.approx(plain / 2, rel=0.01)  # float32 gradients sent as float16
    assert psgd < plain / 4  # rank-1 factors of the embedding gradients
    assert a["fp16"]["rmse"] < a["none"]["rmse"] + 0.05
    assert a["powersgd"]["rmse"] < a["none"]["rmse"] + 0.15
    assert "needs NCCL" in a["bf16_on_gloo"]  # a clear refusal on CPU, not a TypeError from DDP


def test_a_checkpoint_of_two_processes_resumes_in_one(two_ranks) -> None:
    _, _, out = two_ranks
    train, valid = _data()
    resumed = _fit(train, valid, checkpoint_dir=str(out / "ckpt"), resume=True)  # epochs 2 -> 4
    assert resumed.history_.epoch == [1, 2, 3, 4]
    straight = _fit(train, valid)
    assert abs(_rmse(resumed, valid) - _rmse(straight, valid)) < 2e-3


def test_cli_trains_on_two_processes_as_on_one(tmp_path) -> None:
    import subprocess
    import sys

    from cinerec import artifacts

    args = ["train", "mf-torch", "--data", "ml-latest-small", "--set", "epochs=1", "--quiet", "--format", "json"]
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"n{n}"
        res = subprocess.run([sys.executable, "-m", "cinerec", *args, "--out", str(out), "--nproc", str(n)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        runs[n] = json.loads(res.stdout)[0]
        assert artifacts.is_artifact(out)
    assert runs[1]["rmse"] == pytest.approx(runs[2]["rmse"], abs=1e-4)
    model = artifacts.load_model(tmp_path / "n2")
    assert model.name == "mf-torch" and model.n_users_ > 600


def test_models_outside_torch_say_they_train_in_one_process(capsys, tmp_path) -> None:
    from cinerec.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "svd", "--nproc", "2", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not a torch model" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["train", "mf-torch", "--comm-hook", "zip", "--out", str(tmp_path / "y")])
    assert "comm_hook" in capsys.readouterr().err
