"""`cinerec train | evaluate | recommend | compare | models`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cinerec.errors import ConfigError

_SPLIT_HELP = (
    "random:0.9 | random:0.8,0.1 | temporal:0.8 | temporal:0.8,0.1 | user-temporal:0.8 | "
    "user-last:N | kfold:5:1 | loo | u1..u5 | ua | ub"
)
_FORMATS = ("table", "json", "csv", "md")


def _check_format(fmt: str) -> str:
    if fmt not in _FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    return fmt


def console():
    """A rich console; piped output (not a terminal) gets 160 columns, not 80, so
    wide tables are not squeezed into ellipses."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=160)


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


def _print_recommendations(recs, dataset, fmt: str, title: str, out=None) -> None:
    records = recs.to_records(dataset)
    if fmt == "json":
        typer.echo(json.dumps({"user": title, "fallback": recs.fallback, "items": records}, indent=2))
        return
    from rich.table import Table

    caption = recs.fallback or _explanation_caption([r["explanation"] for r in records if r.get("explanation")])
    table = Table(title=title, caption=caption)
    for col in ("#", "title", "predicted", "confidence", "why"):
        table.add_column(col, overflow="fold")
    for rec in records:
        why = rec.get("explanation")
        table.add_row(
            str(rec["rank"]),
            str(rec.get("title", rec["item_id"])),
            f"{rec['predicted_rating']:.2f}" if "predicted_rating" in rec else f"{rec['score']:.3f}",
            f"{rec['confidence']:.2f} (sigma {rec['sigma']:.2f})",
            _format_explanation(why),
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


def _explanation_caption(explanations: list[dict]) -> str | None:
    """What the "why" column means, from the kind of explanations the model gave."""
    shares = sorted({w["method"] for w in explanations if "user_preference_weight" in w and w.get("method")})
    if shares:
        return f"why: share of the user and the movie in the score ({', '.join(shares)})"
    if any("because_you_rated" in w for w in explanations):
        return "why: the movies you rated that are most similar to it (similarity)"
    if any("similar_users_who_rated" in w for w in explanations):
        return "why: how many of your most similar users rated it"
    return None


def _format_explanation(why: dict | None) -> str:
    """One short line: the two weights and the strength (paper 002, section 6)."""
    if not why:
        return ""
    if "user_preference_weight" in why:
        text = (
            f"you {why['user_preference_weight']:.0%} / movie "
            f"{why['movie_characteristics_weight']:.0%}"
        )
        if "strength" in why:
            text += f", strength {why['strength']:.2f}"
        return text
    if why.get("method") == "neighbours":
        if "similar_users_who_rated" in why:
            return f"{why['similar_users_who_rated']} similar users rated it"
        names = why.get("because_you_rated_titles") or why.get("because_you_rated", [])
        return "; ".join(f"{n} ({s:.2f})" for n, s in zip(names, why.get("similarities", []), strict=False))
    return ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in why.items())


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_cmd() -> None:
        """List the registered models and their default hyper-parameters."""
        from rich.table import Table

        from cinerec.models.base import available_models, model_class

        table = Table(title="cinerec models")
        table.add_column("name")
        table.add_column("kind")
        table.add_column("defaults", overflow="fold")
        for name in available_models():
            cls = model_class(name)
            kind = "rating" if cls.predicts_ratings else "ranking"
            table.add_row(name, kind, json.dumps(cls.Config().model_dump(mode="json")))
        console().print(table)

    @app.command("train")
    def train_cmd(
        model: Annotated[str, typer.Argument(help="registered model name (see `cinerec models`)")],
        data: Annotated[str, typer.Option(help="data set name or path")] = "ml-latest-small",
        split: Annotated[str, typer.Option(help=_SPLIT_HELP)] = "random:0.9",
        out: Annotated[Path, typer.Option(help="artifact folder to write")] = Path("artifacts/model"),
        seed: Annotated[int, typer.Option(help="split seed")] = 42,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="hyper-parameter key=value (repeatable)")
        ] = None,
        config: Annotated[Path | None, typer.Option(help="JSON file of hyper-parameters")] = None,
        k: Annotated[int, typer.Option("-k", help="cut-off of ranking metrics")] = 10,
        evaluate: Annotated[bool, typer.Option(help="evaluate on the test part after fitting")] = True,
        fmt: Annotated[str, typer.Option("--format", help="table|json|csv|md")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    ) -> None:
        """Fit MODEL on a split of a data set and save it as an artifact folder."""
        from cinerec import experiment

        _check_format(fmt)
        overrides = experiment.parse_overrides(set_, config)
        ctx = experiment.load_context(data, split, seed, progress=not quiet)
        _, report = experiment.train(
            model, ctx, overrides, out=out, evaluate_after=evaluate, k=k, progress=not quiet
        )
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
        report = experiment.evaluate_artifact(artifact, k=k, progress=not quiet)
        _print_reports([report], fmt)

    @app.command("recommend")
    def recommend_cmd(
        artifact: Annotated[Path, typer.Argument(help="artifact folder")],
        user: Annotated[str, typer.Option(help="raw user id (as in the data files)")],
        k: Annotated[int, typer.Option("-k")] = 10,
        risk_aversion: Annotated[
            float, typer.Option(help="re-rank by score - lambda * item sigma (paper 000, 5.3)")
        ] = 0.0,
        include_seen: Annotated[bool, typer.Option(help="allow items the user already rated")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table|json")] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Top-K movies for a user, with titles, predicted ratings, confidence and why."""
        from cinerec import experiment

        model, ctx = experiment.load_artifact(artifact, progress=not quiet)
        index = experiment.resolve_user(ctx.dataset, user)
        recs = model.recommend(index, k=k, exclude_seen=not include_seen, risk_aversion=risk_aversion)
        _print_recommendations(recs, ctx.dataset, fmt, title=f"top {k} for user {user} ({model.name})")

    @app.command("compare")
    def compare_cmd(
        models: Annotated[list[str], typer.Argument(help="model names")],
        data: Annotated[str, typer.Option(help="data set name or path")] = "ml-latest-small",
        split: Annotated[str, typer.Option(help=_SPLIT_HELP)] = "random:0.9",
        seed: Annotated[int, typer.Option()] = 42,
        k: Annotated[int, typer.Option("-k")] = 10,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="MODEL.key=value hyper-parameter (repeatable)"),
        ] = None,
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

        _check_format(fmt)
        configs: dict[str, dict] = {}
        for key, value in experiment.parse_overrides(set_).items():
            name, _, param = key.partition(".")
            if not param or name not in models:
                raise ConfigError(f"--set for compare expects MODEL.key=value with MODEL in {models}, got {key!r}")
            configs.setdefault(name, {})[param] = value
        ctx = experiment.load_context(data, split, seed, progress=not quiet)
        reports = experiment.compare(models, ctx, configs, k=k, progress=not quiet)
        _print_reports(reports, fmt)
        if significance and len(reports) > 1:
            _print_significance(reports, k)
