"""`make demo`: find or fetch data, train, evaluate, compare, recommend.

Data, in order: ml-latest-small in the data home ($CINEREC_DATA, else
~/.cache/cinerec); a download of it from GroupLens; and when neither works (offline),
a synthetic release in the same format, generated once into the cache.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from cinerec.errors import CinerecError

DEMO_MODELS = ["bias", "item-knn", "svd", "ncf"]
#: Models whose top 10 the demo prints, with their explanations (those present).
EXPLAINERS = ["ncf", "item-knn"]
SYNTHETIC = {"n_ratings": 200_000, "n_users": 2_000, "n_items": 4_000, "seed": 0}


def find_data(console: Console) -> str:
    """A data set name or path the demo can load, fetching or generating as needed."""
    from cinerec.data import data_home, load_dataset
    from cinerec.data.store import find_local

    # Only look for it: the experiment loads it (once) afterwards.
    if find_local("ml-latest-small") is not None:
        console.print(f"[green]data:[/] ml-latest-small from {data_home()}")
        return "ml-latest-small"
    if os.environ.get("CINEREC_OFFLINE") != "1":
        try:
            console.print("ml-latest-small is not in the data home: trying GroupLens ...")
            load_dataset("ml-latest-small", download=True, progress=True)
            return "ml-latest-small"
        except CinerecError as e:
            console.print(f"[yellow]download failed:[/] {e}")
    from cinerec.data.synthetic import generate

    out = Path(data_home()) / "synthetic-demo"
    if not (out / "ratings.csv").exists():
        console.print(f"[yellow]offline:[/] generating a synthetic MovieLens-format release in {out}")
        generate(out, **SYNTHETIC, progress=True)
    return str(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=DEMO_MODELS)
    parser.add_argument("--split", default="random:0.9")
    parser.add_argument("--out", default="demo-out")
    args = parser.parse_args(argv)
    from cinerec._util.console import console as make_console

    console = make_console()
    try:
        run(console, args.models, args.split, Path(args.out))
    except CinerecError as e:
        console.print(f"[bold red]error:[/] {e}")
        raise SystemExit(2) from None


def run(console: Console, models: list[str], split: str, out: Path) -> None:
    from cinerec import artifacts, experiment
    from cinerec.cli.models import print_recommendations
    from cinerec.data.catalogue import Catalogue
    from cinerec.report import tables

    data = find_data(console)
    ctx = experiment.load_context(data, split, seed=42)
    info = ctx.dataset.describe()
    console.print(
        f"{info['ratings']:,} ratings, {info['users']:,} users, {info['rated_items']:,} rated of "
        f"{info['items']:,} movies; split {split}: {ctx.split.train.n_ratings:,} train / "
        f"{ctx.split.test.n_ratings:,} test"
    )
    console.rule("compare")
    fitted: dict = {}
    reports = experiment.compare(models, ctx, fitted=fitted)
    console.print(tables.rich_table(reports))
    from cinerec._util import fs

    fs.write_text(out / "compare.md", tables.to_markdown(reports))

    # The paper-002 network's attention-style explanation, and item-knn's "because you
    # rated" list: two kinds of why for the same user.
    explainers = [m for m in EXPLAINERS if m in models] or [models[-1]]
    counts = ctx.split.train.user_counts
    user = int(counts.argmax())
    raw = ctx.dataset.user_ids.raw(user)
    catalogue = Catalogue.from_dataset(ctx.dataset)
    for name in explainers:
        console.rule(f"recommendations ({name})")
        model = fitted[name]
        # The demo's own output folder: replacing its previous artifacts is expected.
        artifacts.save_model(model, out / name, metrics=reports[models.index(name)].metrics, overwrite=True)
        recs = model.recommend(user, k=10)
        print_recommendations(recs, catalogue, "table", title=f"top 10 for user {raw} ({name})", out=console)
        console.print(
            f"saved: {out / name} — try `cinerec recommend {out / name} --user {raw}` "
            f"and `cinerec evaluate {out / name}`"
        )
    served = " ".join(str(out / name) for name in explainers)
    console.rule("serve them")
    console.print(
        "start the recommendation service (REST on :8000, web page at http://127.0.0.1:8000/):\n"
        f"  make serve   # = .venv/bin/cinerec serve {served} --pipeline ncf=item-knn:500 --api-key demo-key",
        highlight=False,
    )

if __name__ == "__main__":
    main()
