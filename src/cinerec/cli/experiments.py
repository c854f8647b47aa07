"""Experiments: `cinerec run FILE.toml` (experiment files), `cinerec reproduce paper-002`
(a paper's tables beside ours) and `cinerec tune MODEL` (hyper-parameter search with
Optuna on a validation part of train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cinerec._util import validate
from cinerec._util.console import console
from cinerec.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        path: Annotated[Path | None, typer.Argument(metavar="FILE", help="experiment file (TOML), e.g. configs/quick.toml")]
        = None,
        schema: Annotated[bool, typer.Option("--schema", help="print the JSON schema of experiment files")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table|json|md")] = "table",
    ) -> None:
        """Run an experiment file: every model fitted, evaluated, saved; results.json
        written after each; models already finished are read back, not retrained."""
        from cinerec import experiment_file

        if schema:
            typer.echo(json.dumps(experiment_file.schema(), indent=2))
            return
        if path is None:
            raise ConfigError("give an experiment file (cinerec run configs/quick.toml) or --schema")
        if fmt not in ("table", "json", "md"):
            raise ConfigError(f"--format must be table, json or md, got {fmt!r}")
        results = experiment_file.run(path, progress=not quiet)
        if fmt == "json":
            typer.echo(json.dumps(results, indent=2, default=str))
            return
        keys = ["rmse", "mae", f"ndcg@{results['k']}", f"recall@{results['k']}", "fit_s"]
        lines = ["| model | " + " | ".join(keys) + " | reused |", "|---|" + "---:|" * len(keys) + "---|"]
        for label, entry in results["models"].items():
            m = entry["metrics"]
            cells = [("-" if m.get(key) is None else f"{m[key]:.4f}") for key in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {'yes' if entry.get('reused') else 'no'} |")
        if fmt == "md":
            typer.echo("\n".join(lines))
        else:
            console().print("\n".join(lines))

    @app.command("reproduce")
    def reproduce_cmd(
        paper: Annotated[str | None, typer.Argument(
            metavar="PAPER", help="paper-000 .. paper-004 (see --list), or an experiment file with a [paper] table")]
        = None,
        out: Annotated[Path | None, typer.Option(help="run folder (default runs/PAPER); resumable")] = None,
        list_: Annotated[bool, typer.Option("--list", help="list the shipped reproductions")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table|json|md")] = "table",
    ) -> None:
        """Run a paper's experiment with cinerec's models and print the paper's tables beside
        ours, cell by cell, with the difference and why they differ; the table is also
        written to OUT/reproduction.md (and .json)."""
        from cinerec import reproduce

        if list_:
            for name in reproduce.available():
                _, spec, _ = reproduce.load_paper(name)
                typer.echo(f"{name}  {spec.title}")
            return
        if paper is None:
            raise ConfigError(f"give a paper ({', '.join(reproduce.available())}) or --list")
        if fmt not in ("table", "json", "md"):
            raise ConfigError(f"--format must be table, json or md, got {fmt!r}")
        rep = reproduce.reproduce(paper, out=out, progress=not quiet)
        if fmt == "json":
            typer.echo(json.dumps(rep.to_dict(), indent=2, default=str))
        elif fmt == "md":
            typer.echo(rep.to_markdown())
        else:
            _print_reproduction(rep)

    @app.command("report")
    def report_cmd(
        run_dir: Annotated[Path, typer.Argument(help="folder written by `cinerec run`")],
        out: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html)")] = None,
    ) -> None:
        """One self-contained HTML page of a run: tables, bar and radar charts, loss
        curves, the compression trade-off."""
        from cinerec.report.html import run_report

        typer.echo(str(run_report(run_dir, out)))

    @app.command("tune")
    def tune_cmd(
        model: Annotated[str, typer.Argument(help="registered model name (see `cinerec models`)")],
        data: Annotated[str, typer.Option(help="data set name or path")] = "ml-latest-small",
        split: Annotated[str, typer.Option(help="split spec; its train part is split again for validation")]
        = "random:0.9",
        seed: Annotated[int, typer.Option(help="split seed")] = 42,
        trials: Annotated[int, typer.Option(help="trials in the study in all (a resumed study runs the rest)")]
        = 20,
        metric: Annotated[str, typer.Option(help="rmse | mae (minimised), ndcg@10, recall@20 ... (maximised)")]
        = "rmse",
        storage: Annotated[Path | None, typer.Option(
            help="SQLite file of the study (resumable); default tune/MODEL.db")] = None,
        study: Annotated[str | None, typer.Option(help="study name (default: model-data-split-metric)")] = None,
        out: Annotated[Path | None, typer.Option(
            help="best hyper-parameters as JSON for `cinerec train --config` (default tune/MODEL.json)")] = None,
        set_: Annotated[list[str] | None, typer.Option("--set", help="hold key=value fixed (repeatable)")] = None,
        valid_split: Annotated[str | None, typer.Option(
            help="split of train into fit / validation (default: --split again)")] = None,
        sampler_seed: Annotated[int, typer.Option(help="seed of the TPE sampler")] = 0,
        timeout: Annotated[float | None, typer.Option(help="stop starting trials after this many seconds")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Search MODEL's hyper-parameters (TPE, median pruning of torch models) and write
        the best ones as a config file."""
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError("tuning needs Optuna: pip install 'cinerec[tune]'") from None
        from cinerec import experiment, tuning

        seed = validate.seed(seed, "--seed")
        fixed = experiment.parse_overrides(set_, None)
        tuning.direction_of(metric)  # a bad metric fails before the data is read
        storage = storage or Path("tune") / f"{model}.db"
        out = out or Path("tune") / f"{model}.json"
        ctx = experiment.load_context(data, split, seed, progress=not quiet)
        result = tuning.tune(model, ctx, trials=trials, metric=metric, storage=storage, study_name=study,
                             fixed=fixed, valid_spec=valid_split, seed=sampler_seed, timeout=timeout,
                             progress=not quiet)
        tuning.write_config(result, out)
        if quiet:
            typer.echo(json.dumps(result.to_dict() | {"config_file": str(out)}, default=str))
            return
        c = console()
        c.print(f"{model}: best {metric} {result.best_value:.4f} ({result.complete} trials complete, "
                f"{result.pruned} pruned, {result.failed} failed; study {storage})")
        for name, value in sorted(result.config.items()):
            c.print(f"  {name} = {value!r}")
        c.print(f"wrote {out}: cinerec train {model} --config {out}")


def _print_reproduction(rep) -> None:
    from rich.table import Table

    from cinerec.reproduce import fmt_claim, fmt_difference, fmt_value

    styles = {"agrees": "green", "holds": "green", "differs": "yellow", "fails": "red", "not run": "dim",
              "missing": "red"}
    t = Table(title=f"{rep.paper}: {rep.title}", show_lines=False)
    for name, justify in (("table", "left"), ("row", "left"), ("metric", "left"), ("paper", "right"),
                          ("cinerec", "right"), ("difference", "right"), ("verdict", "left"), ("reason", "left")):
        t.add_column(name, justify=justify, overflow="fold")
    for r in rep.rows:
        t.add_row(r.table, r.row, r.metric, fmt_claim(r.claimed), fmt_value(r.measured), fmt_difference(r),
                  f"[{styles.get(r.verdict, '')}]{r.verdict}[/]" if r.verdict in styles else r.verdict, r.reason)
    c = console()
    c.print(t)
    s = rep.setup
    c.print(f"data {s['data']}, split {s['split']} seed {s['seed']}, K {s['k']}; {rep.seconds:.0f} s"
            + (f" ({len(s['reused'])} models read back)" if s.get("reused") else ""))
    for note in rep.notes:
        c.print(f"- {note}")
    c.print(f"wrote {Path(rep.out) / 'reproduction.md'}")
