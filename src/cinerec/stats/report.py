"""Rendering of a `VarianceAnalysis`: markdown and CSV files, rich terminal tables, PNG
figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from cinerec._util import fs
from cinerec.stats.claims import PAPER_CLAIMS

if TYPE_CHECKING:
    from rich.console import Console

    from cinerec.stats.analysis import VarianceAnalysis

# Tables shown in markdown / terminal, with a one-line caption each.
_SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "tiers",
        "Rating tiers",
        "Movies grouped by mean rating; sigma = mean of per-movie "
        "population sd; consistency = 1 - sigma/sigma_max; polarization = 2 min(p_low, p_high).",
    ),
    ("genres", "Genres", "Same columns per genre (a movie counts in each of its genres)."),
    (
        "correlation",
        "Correlation of movie sigma with movie mean",
        "95% CI by Fisher z; p-values from scipy.",
    ),
    (
        "user_classes",
        "User classes",
        "exploratory: sigma > 1.5, consistent: sigma < 0.8; genre entropy in bits.",
    ),
    (
        "user_tests",
        "User class tests",
        "Two-sided Mann-Whitney U (a = exploratory, b = consistent); rank-biserial > 0 "
        "means a is larger.",
    ),
    (
        "holiday",
        "Holiday vs rest of year",
        "Pooled population sd of ratings per genre; Brown-Forsythe (Levene, median) test; "
        "q = Benjamini-Hochberg.",
    ),
)


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.2e}"
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_table(df: pl.DataFrame) -> str:
    """A small frame as a GitHub markdown table (floats to 3 decimals)."""
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([head, sep, *body])


def analysis_markdown(a: VarianceAnalysis) -> str:
    """The analysis as one markdown document (without per-movie/per-user rows)."""
    lo, hi = a.rating_scale
    parts = [
        f"# Variance analysis: {a.dataset}",
        "",
        f"{a.n_ratings:,} ratings, {a.n_users:,} users, {a.n_items:,} rated movies; "
        f"scale {lo:g}-{hi:g}; sigma with ddof={a.ddof} "
        f"({'population' if a.ddof == 0 else 'sample'}); minimum support {a.min_count} "
        f"ratings per movie/user ({len(a.movies):,} movies, {len(a.users):,} users kept); "
        f"holiday window {a.holiday_window}.",
    ]
    for note in a.notes:
        parts += ["", f"*Note: {note}.*"]
    for key, title, caption in _SECTIONS:
        parts += ["", f"## {title}", "", caption, "", markdown_table(getattr(a, key))]
    parts += [
        "",
        "## Paper 000 claims vs measured",
        "",
        markdown_table(a.paper_comparison()),
        "",
    ]
    return "\n".join(parts)


def write_analysis(a: VarianceAnalysis, out_dir: str | Path) -> list[Path]:
    """Write ``variance.md`` and one CSV per table into ``out_dir``; return the paths.
    Every file is written atomically (no half-written file is left behind)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [fs.write_text(out / "variance.md", analysis_markdown(a))]
    for stem, df in {**a.tables(), "paper_comparison": a.paper_comparison()}.items():
        written.append(fs.write_text(out / f"{stem}.csv", df.write_csv()))
    return written


def print_tables(a: VarianceAnalysis, console: Console) -> None:
    """Show the report tables in the terminal with rich."""
    from rich.table import Table

    console.print(
        f"[bold]{a.dataset}[/]: {a.n_ratings:,} ratings, {len(a.movies):,} movies and "
        f"{len(a.users):,} users with >= {a.min_count} ratings"
    )
    for key, title, _ in (*_SECTIONS, ("paper", "Paper 000 claims vs measured", "")):
        df = a.paper_comparison() if key == "paper" else getattr(a, key)
        t = Table(title=title, title_justify="left")
        for c in df.columns:
            t.add_column(c, justify="left" if df.schema[c] == pl.Utf8 else "right")
        for row in df.iter_rows():
            t.add_row(*(_fmt(v) for v in row))
        console.print(t)


def _claim_key(col: str, label: str) -> str:
    return f"tier {label.split(' ')[0]}" if col == "tier" else label


# ---- figures -----------------------------------------------------------------------
def write_figures(a: VarianceAnalysis, out_dir: str | Path) -> list[Path]:
    """Write the PNG figures of the analysis into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def save(fig: object, name: str) -> None:
        p = out / name
        try:
            with fs.atomic_file(p) as tmp:
                fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")  # type: ignore[attr-defined]
        finally:
            plt.close(fig)  # type: ignore[arg-type]
        paths.append(p)

    # 1. sigma vs mean, hexbin density (scatter would saturate at 60k movies).
    mean = a.movies.get_column("mean").to_numpy()
    sigma = a.movies.get_column("sigma").to_numpy()
    fig, ax = plt.subplots(figsize=(7, 5))
    hb = ax.hexbin(mean, sigma, gridsize=40, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=ax, label="movies (log scale)")
    for x in (2.5, 4.0):
        ax.axvline(x, color="red", ls="--", lw=1)
    r = a.correlation.filter(pl.col("method") == "pearson").item(0, "r")
    rho = a.correlation.filter(pl.col("method") == "spearman").item(0, "r")
    ax.set_xlabel("movie mean rating")
    ax.set_ylabel("movie sigma (population sd)")
    ax.set_title(
        f"{a.dataset}: sigma vs mean, {len(a.movies):,} movies with >= {a.min_count} ratings\n"
        f"Pearson r = {r:.3f}, Spearman rho = {rho:.3f} (paper: -0.743); dashed = tier bounds"
    )
    save(fig, "sigma_vs_mean.png")

    # 2. tiers and genres: sigma and consistency bars.
    groups = [("tier", a.tiers)]
    if len(a.genres):
        groups.append(("genre", a.genres))
    fig, axes = plt.subplots(
        1,
        len(groups),
        figsize=(6 + 5 * (len(groups) - 1), 5.5),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 2.5][: len(groups)]},
    )
    for ax, (col, df) in zip(axes[0], groups, strict=True):
        labels = df.get_column(col).to_list()
        x = np.arange(len(labels))
        # Paper 000's claimed sigma (where it gives one) as markers, to compare at a glance.
        claims = [PAPER_CLAIMS.get(f"{_claim_key(col, lab)}: sigma", np.nan) for lab in labels]
        if col == "tier":
            labels = [lab.replace(" (", "\n(") for lab in labels]
        w = 0.4
        ax.bar(x - w / 2, df.get_column("sigma").to_numpy(), w, label="mean sigma", color="#d95f02")
        ax.bar(
            x + w / 2,
            df.get_column("consistency").to_numpy(),
            w,
            label="consistency",
            color="#1b9e77",
        )
        if np.isfinite(claims).any():
            ax.plot(x - w / 2, claims, "kx", ms=9, mew=2, label="paper 000 sigma (claim)")
        ax.set_xticks(
            x,
            labels,
            rotation=45 if col == "genre" else 0,
            ha="right" if col == "genre" else "center",
        )
        ax.set_title(f"by {col} (movies with >= {a.min_count} ratings)")
        top = np.nanmax(np.r_[df.get_column("sigma").to_numpy(), claims, 1.0])
        ax.set_ylim(0, float(top) * 1.15)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left" if col == "tier" else "upper right", fontsize=8)
    fig.suptitle(f"{a.dataset}: sigma and consistency (1 - sigma/sigma_max)")
    fig.tight_layout()
    save(fig, "tiers_genres.png")

    # 3. user sigma histogram with class thresholds.
    usig = a.users.get_column("sigma").to_numpy()
    usig = usig[np.isfinite(usig)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.hist(usig, bins=60, color="#7570b3")
    counts = dict(
        zip(
            a.user_classes.get_column("user_class").to_list(),
            a.user_classes.get_column("n_users").to_list(),
            strict=True,
        )
    )
    ax.axvline(0.8, color="black", ls="--", lw=1)
    ax.axvline(1.5, color="black", ls="--", lw=1)
    ymax = ax.get_ylim()[1]
    ax.text(
        0.78,
        ymax * 0.95,
        f"consistent\n(< 0.8)\nn={counts.get('consistent', 0):,}",
        ha="right",
        va="top",
        fontsize=9,
    )
    ax.text(
        1.52,
        ymax * 0.95,
        f"exploratory\n(> 1.5)\nn={counts.get('exploratory', 0):,}",
        ha="left",
        va="top",
        fontsize=9,
    )
    ax.set_xlabel("user sigma (population sd of the user's ratings)")
    ax.set_ylabel("users")
    ax.set_title(f"{a.dataset}: user sigma, {len(a.users):,} users with >= {a.min_count} ratings")
    save(fig, "user_sigma.png")

    # 4. holiday vs rest per genre.
    hol = a.holiday.filter(pl.col("n_holiday") > 0)
    if len(hol):
        labels = hol.get_column("genre").to_list()
        x = np.arange(len(labels))
        w = 0.4
        fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) + 2), 5))
        ax.bar(
            x - w / 2,
            hol.get_column("sigma_holiday").to_numpy(),
            w,
            label=f"holiday ({a.holiday_window})",
            color="#e7298a",
        )
        ax.bar(
            x + w / 2,
            hol.get_column("sigma_rest").to_numpy(),
            w,
            label="rest of year",
            color="#66a61e",
        )
        q = hol.get_column("q_value").to_numpy()
        top = np.fmax(
            hol.get_column("sigma_holiday").to_numpy(), hol.get_column("sigma_rest").to_numpy()
        )
        for xi, qi, ti in zip(x, q, top, strict=True):
            if np.isfinite(qi) and qi < 0.05:
                ax.text(xi, ti + 0.02, "*", ha="center", fontsize=12)
        ch = np.array([PAPER_CLAIMS.get(f"{g} holiday sigma", np.nan) for g in labels])
        cr = np.array([PAPER_CLAIMS.get(f"{g} rest sigma", np.nan) for g in labels])
        if np.isfinite(ch).any():
            ax.plot(
                np.r_[x - w / 2, x + w / 2],
                np.r_[ch, cr],
                "kx",
                ms=9,
                mew=2,
                label="paper 000 claim",
            )
            top = np.fmax(top, np.fmax(ch, cr))
        ax.set_xticks(x, labels, rotation=45, ha="right")
        ax.set_ylabel("pooled sigma of ratings")
        ax.set_ylim(0, float(np.nanmax(top)) * 1.2)
        ax.set_title(f"{a.dataset}: rating sigma, holiday vs rest (* = BH q < 0.05)")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        save(fig, "holiday.png")
    return paths
