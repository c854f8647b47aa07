"""`cinerec train | evaluate | recommend | similar | compare | upgrade | models`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cinerec._util import validate
from cinerec._util.console import console
from cinerec.errors import ConfigError

_SPLIT_HELP = (
    "random:0.9 | random:0.8,0.1 | temporal:0.8 | temporal:0.8,0.1 | user-temporal:0.8 | "
    "user-last:N | kfold:5:1 | item-cold:0.1 | loo | u1..u5 | ua | ub"
)
_FORMATS = ("table", "json", "csv", "md")


def _check_format(fmt: str, allowed: tuple[str, ...] = _FORMATS) -> str:
    if fmt not in allowed:
        raise ConfigError(f"--format must be one of {', '.join(allowed)}, got {fmt!r}")
    return fmt


def _print_reports(reports: list, fmt: str) -> None:
    from cinerec.report import tables

    if fmt == "table":
        console().print(tables.rich_table(reports))
    elif fmt == "json":
        typer.echo(tables.to_json(reports))
    elif fmt == "csv":
        typer.echo(tables.to_csv(reports), nl=False)
    else:
        typer.echo(tables.to_markdown(reports))


def print_recommendations(recs, catalogue, fmt: str, title: str, out=None) -> None:
    """A table (titles, predicted rating or score, confidence, why) or JSON. Any model's
    explanations render through their own ``to_text`` / ``to_dict``."""
    if fmt == "json":
        typer.echo(json.dumps(recs.to_dict(catalogue), indent=2))
        return
    from rich.table import Table

    table = Table(title=title, caption=recs.caption())
    for col in ("#", "title", "predicted", "confidence", "why"):
        table.add_column(col, overflow="fold")
    titles = catalogue.titles(recs.items) if catalogue is not None else [str(i) for i in recs.items]
    for j in range(len(recs)):
        value = recs.predicted_ratings[j] if recs.predicted_ratings is not None else recs.scores[j]
        why = recs.explanations[j] if j < len(recs.explanations) else None
        table.add_row(
            str(j + 1),
            titles[j],
            f"{value:.2f}" if recs.predicted_ratings is not None else f"{value:.3f}",
            f"{recs.confidence[j]:.2f} (sigma {recs.sigma[j]:.2f})",
            why.to_text(catalogue) if why is not None else "",
        )
    (out or console()).print(table)


def _print_significance(reports: list, k: int) -> None:
    """Each model against the first, on the same split (paired over rows / users)."""
    from rich.table import Table

    from cinerec.evaluation.significance import compare_reports

    base = reports[0]
    table = Table(title=f"paired significance vs {base.model} (95% CI; p-values)")
    for col in ("model", "RMSE diff [CI]", "p (RMSE)", f"NDCG@{k} mean diff", f"p (Wilcoxon, NDCG@{k})"):
        table.add_column(col)
    for other in reports[1:]:
        result = compare_reports(other, base)
        rmse = result.get("rmse")
        ndcg = result.get(f"ndcg@{k}")
        table.add_row(
            other.model,
            f"{rmse['diff']:+.4f} [{rmse['low']:+.4f}, {rmse['high']:+.4f}]" if rmse else "–",
            f"{rmse['p']:.3g}" if rmse else "–",
            f"{ndcg['mean_diff']:+.4f}" if ndcg else "–",
            f"{ndcg['p']:.3g}" if ndcg else "–",
        )
    console().print(table)


def _load_for_serving(artifact: Path, quiet: bool):
    """(model, catalogue): the artifact alone; a format-1 artifact (no ids) needs its
    data, rebuilt from the provenance."""
    from cinerec import artifacts, experiment

    model = artifacts.load_model(artifact)
    if model.catalogue is not None:
        return model, model.catalogue
    if not quiet:
        typer.echo(
            f"{artifact} is a format-1 artifact without id maps: reading its data from the data "
            f"home (run `cinerec upgrade {artifact}` to make it self-contained)",
            err=True,
        )
    from cinerec.data.catalogue import Catalogue

    model, ctx = experiment.load_artifact(artifact, progress=not quiet)
    return model, Catalogue.from_dataset(ctx.dataset)


def _items_option(catalogue, text: str | None, what: str):
    import numpy as np

    from cinerec import experiment

    if not text:
        return None
    raw = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return np.array([experiment._item_index(catalogue, int(r)) for r in raw], dtype=np.int64)
    except ValueError:
        raise ConfigError(f"{what} expects comma-separated movie ids, got {text!r}") from None


def _fit_options(device: str, threads: int, checkpoint_dir: Path | None, resume: bool, quiet: bool,
                 comm_hook: str = "none") -> Any:
    from cinerec.train.options import fit_options

    return fit_options(
        device=device,
        threads=validate.integer("--threads", threads, lo=0, hi=1024),
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
        resume=resume,
        progress=not quiet,
        comm_hook=comm_hook,
    )


def _join_process_group(device: str) -> int:
    from cinerec.train import distributed

    distributed.init_from_env(device)
    return distributed.world()[0]


def _relaunch_under_torchrun(nproc: int) -> int:
    """``torchrun --standalone --nproc-per-node N -m cinerec <this command without
    --nproc>``; its exit status (non-zero when a rank failed)."""
    import os
    import sys

    from torch.distributed.run import main as torchrun

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    # torchrun's default (and its warning when unset): one math thread per process
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        torchrun(["--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc), "-m", "cinerec", *args])
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # torch's ChildFailedError: its message names the failed rank
        typer.echo(f"error: a training process failed: {e}", err=True)
        return 1
    return 0


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_cmd() -> None:
        """List the registered models and their default hyper-parameters."""
        from rich.table import Table

        from cinerec.models.registry import available_models, model_class

        table = Table(title="cinerec models")
        for col in ("name", "kind", "fold-in", "defaults"):
            table.add_column(col, overflow="fold")
        for name in available_models():
            cls = model_class(name)
            kind = "rating" if cls.predicts_ratings else "ranking"
            table.add_row(name, kind, "yes" if cls.folds_in else "fallback", json.dumps(cls.Config().model_dump(mode="json")))
        console().print(table)

    @app.command("train")
    def train_cmd(
        model: Annotated[str, typer.Argument(help="registered model name (see `cinerec models`)")],
        data: Annotated[str, typer.Option(help="data set name or path")] = "ml-latest-small",
        split: Annotated[str, typer.Option(help=_SPLIT_HELP)] = "random:0.9",
        out: Annotated[Path, typer.Option(help="artifact folder to write")] = Path("artifacts/model"),
        force: Annotated[bool, typer.Option("--force", help="replace an existing artifact at --out")] = False,
        seed: Annotated[int, typer.Option(help="split seed (0 .. 2^32-1)")] = 42,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="hyper-parameter key=value (repeatable)")
        ] = None,
        config: Annotated[Path | None, typer.Option(help="JSON file of hyper-parameters")] = None,
        k: Annotated[int, typer.Option("-k", help="cut-off of ranking metrics")] = 10,
        evaluate: Annotated[bool, typer.Option(help="evaluate on the test part after fitting")] = True,
        device: Annotated[str, typer.Option(help="cpu | auto | cuda | cuda:N (torch models)")] = "cpu",
        threads: Annotated[int, typer.Option(help="CPU threads of models that parallelise (0 = all)")] = 0,
        checkpoint_dir: Annotated[Path | None, typer.Option(help="torch models: checkpoint every epoch here")] = None,
        resume: Annotated[bool, typer.Option(help="torch models: continue from --checkpoint-dir")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table|json|csv|md")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
        nproc: Annotated[int, typer.Option(help="torch models: train on N processes (DDP; gloo on CPU)")] = 1,
        comm_hook: Annotated[
            str, typer.Option(help="distributed runs: gradient compression none|fp16|bf16|powersgd")
        ] = "none",
    ) -> None:
        """Fit MODEL on a split of a data set and save it as an artifact folder.

        ``--nproc N`` trains a torch model on N processes of this machine (it runs
        ``torchrun --standalone --nproc-per-node N -m cinerec train ...``); launched by
        torchrun yourself (several machines: ``--nnodes``, ``--rdzv-endpoint``), each
        process joins the group and rank 0 writes the artifact and the report."""
        from cinerec import artifacts, experiment
        from cinerec.models.registry import model_class

        _check_format(fmt)
        k = validate.k(k)
        seed = validate.seed(seed, "--seed")
        nproc = validate.integer("--nproc", nproc, lo=1, hi=1024)
        from cinerec.train.options import launched_world_size

        launched = launched_world_size()
        if (nproc > 1 or launched > 1) and model_class(model).table_backend != "torch":
            raise ConfigError(f"{model} is not a torch model: it trains in one process (see docs/scaling.md)")
        if nproc > 1 and launched == 1:
            artifacts.check_output(out, overwrite=force)
            raise typer.Exit(_relaunch_under_torchrun(nproc))
        rank = _join_process_group(device) if launched > 1 else 0
        try:
            if rank == 0:
                artifacts.check_output(out, overwrite=force)  # before any data is read
            overrides = experiment.parse_overrides(set_, config)
            model_class(model)(overrides)  # validate the config before loading data
            options = _fit_options(device, threads, checkpoint_dir, resume, quiet or rank != 0, comm_hook)
            ctx = experiment.load_context(data, split, seed, progress=not quiet and rank == 0)
            _, report = experiment.train(
                model, ctx, overrides, out=out if rank == 0 else None, evaluate_after=evaluate and rank == 0,
                k=k, progress=not quiet and rank == 0, options=options, overwrite=force,
            )
        finally:
            if launched > 1:
                from cinerec.train import distributed

                distributed.leave()
        if rank != 0:
            return
        if report is not None:
            _print_reports([report], fmt)
        if not quiet:
            typer.echo(f"saved {model} to {out}", err=True)

    @app.command("evaluate")
    def evaluate_cmd(
        artifact: Annotated[Path, typer.Argument(help="artifact folder written by `cinerec train`")],
        k: Annotated[int, typer.Option("-k")] = 10,
        fmt: Annotated[str, typer.Option("--format", help="table|json|csv|md")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Re-evaluate a saved model on the test part recorded in its manifest."""
        from cinerec import experiment

        _check_format(fmt)
        report = experiment.evaluate_artifact(artifact, k=validate.k(k), progress=not quiet)
        _print_reports([report], fmt)

    @app.command("recommend")
    def recommend_cmd(
        artifact: Annotated[Path, typer.Argument(help="artifact folder")],
        user: Annotated[str | None, typer.Option(help="raw user id (as in the data files)")] = None,
        history: Annotated[
            str | None,
            typer.Option(help='ratings of a new visitor (or new ratings of --user): "movieId:rating,..."'),
        ] = None,
        k: Annotated[int, typer.Option("-k")] = 10,
        risk_aversion: Annotated[
            float, typer.Option(help="re-rank by score - lambda * item sigma (paper 000, 5.3)")
        ] = 0.0,
        exclude: Annotated[str | None, typer.Option(help="movie ids never to recommend, comma-separated")] = None,
        candidates: Annotated[str | None, typer.Option(help="rank only these movie ids, comma-separated")] = None,
        include_seen: Annotated[bool, typer.Option(help="allow items the user already rated")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table|json")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Top-K movies for a user or a history, with titles, predicted ratings,
        confidence and why. Needs only the artifact folder (no data home)."""
        from cinerec import experiment
        from cinerec.models.query import Query

        _check_format(fmt, ("table", "json"))
        k = validate.k(k)
        lam = validate.risk_aversion(risk_aversion)
        if user is None and history is None:
            raise ConfigError("give --user RAW_ID, --history movieId:rating,..., or both")
        model, catalogue = _load_for_serving(artifact, quiet)
        index = experiment.resolve_user(catalogue, user) if user is not None else None
        query = Query(
            user=index,
            history=experiment.parse_history(catalogue, history) if history else None,
            candidates=_items_option(catalogue, candidates, "--candidates"),
            exclude=_items_option(catalogue, exclude, "--exclude"),
            exclude_seen=not include_seen,
            risk_aversion=lam,
        )
        recs = model.recommend(query, k=k)
        who = f"user {user}" if user is not None else "a new visitor"
        print_recommendations(recs, catalogue, fmt, title=f"top {k} for {who} ({model.name}, {recs.basis})")

    @app.command("similar")
    def similar_cmd(
        artifact: Annotated[Path, typer.Argument(help="artifact folder")],
        item: Annotated[int, typer.Option(help="raw movie id")],
        k: Annotated[int, typer.Option("-k")] = 10,
        fmt: Annotated[str, typer.Option("--format", help="table|json")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """The movies most similar to one movie (item vectors or the item-item matrix)."""
        from rich.table import Table

        from cinerec import experiment

        _check_format(fmt, ("table", "json"))
        model, catalogue = _load_for_serving(artifact, quiet)
        sim = model.similar_items(experiment._item_index(catalogue, item), k=validate.k(k))
        records = sim.to_records(catalogue)
        if fmt == "json":
            typer.echo(json.dumps({"item": item, "measure": sim.measure, "items": records}, indent=2))
            return
        table = Table(title=f"most similar to {catalogue.titles([sim.item])[0]} ({model.name})", caption=sim.measure)
        for col in ("#", "title", "similarity"):
            table.add_column(col)
        for rec in records:
            table.add_row(str(rec["rank"]), rec.get("title", str(rec["item_id"])), f"{rec['similarity']:.3f}")
        console().print(table)

    @app.command("upgrade")
    def upgrade_cmd(
        artifact: Annotated[Path, typer.Argument(help="format-1 artifact folder")],
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Rewrite a format-1 artifact as a self-contained format-2 one (needs its data)."""
        from cinerec import experiment

        experiment.upgrade(artifact, progress=not quiet)
        if not quiet:
            typer.echo(f"upgraded {artifact}", err=True)

    @app.command("compare")
    def compare_cmd(
        models: Annotated[list[str], typer.Argument(help="model names")],
        data: Annotated[str, typer.Option(help="data set name or path")] = "ml-latest-small",
        split: Annotated[str, typer.Option(help=_SPLIT_HELP)] = "random:0.9",
        seed: Annotated[int, typer.Option(help="split seed (0 .. 2^32-1)")] = 42,
        k: Annotated[int, typer.Option("-k")] = 10,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="MODEL.key=value hyper-parameter (repeatable)"),
        ] = None,
        device: Annotated[str, typer.Option(help="cpu | auto | cuda | cuda:N (torch models)")] = "cpu",
        threads: Annotated[int, typer.Option(help="CPU threads of models that parallelise (0 = all)")] = 0,
        fmt: Annotated[str, typer.Option("--format", help="table|json|csv|md")] = "table",
        significance: Annotated[
            bool,
            typer.Option(
                "--significance",
                help="paired tests of every model against the first: bootstrap CI of the "
                "RMSE difference, Wilcoxon on per-user NDCG@K",
            ),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Fit and evaluate several models on the same split: one table, best marked."""
        from cinerec import experiment
        from cinerec.models.registry import model_class

        _check_format(fmt)
        k = validate.k(k)
        seed = validate.seed(seed, "--seed")
        configs: dict[str, dict] = {}
        for key, value in experiment.parse_overrides(set_).items():
            name, _, param = key.partition(".")
            if not param or name not in models:
                raise ConfigError(f"--set for compare expects MODEL.key=value with MODEL in {models}, got {key!r}")
            configs.setdefault(name, {})[param] = value
        for name in models:
            model_class(name)(configs.get(name, {}))  # fail on a bad name or config before fitting
        options = _fit_options(device, threads, None, False, quiet)
        ctx = experiment.load_context(data, split, seed, progress=not quiet)
        reports = experiment.compare(models, ctx, configs, k=k, progress=not quiet, options=options)
        _print_reports(reports, fmt)
        if significance and len(reports) > 1:
            _print_significance(reports, k)
