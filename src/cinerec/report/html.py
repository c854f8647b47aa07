"""One self-contained HTML page for a run folder written by ``cinerec run``.

`run_report(RUN_DIR)` reads ``results.json`` and each artifact's manifest and writes
``RUN_DIR/report.html``: the metric table (best value of each column marked), a bar
chart per headline metric (paper 004, Fig. 1), a radar chart of every model over the
metrics rescaled to [0, 1] (paper 004, Fig. 2), the training and validation loss per
epoch of the models trained by the Trainer (paper 003, Fig. 1), and the compression
trade-off (paper 000, Fig. 3: model bytes against RMSE, marker size the top-K latency).
When the run's data can be loaded again (`cinerec.report.evidence`), values that differ
from the best model's at p < 0.05 are starred and paper 000's variance figures (Fig. 4)
of the train part are drawn. Figures are PNGs inside the page (base64): it opens with no
network and no other file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinerec._util import fs
from cinerec.errors import ConfigError
from cinerec.report import evidence
from cinerec.report.evidence import ALPHA
from cinerec.report.tables import LOWER_IS_BETTER, best_rows, format_value

RESULTS = "results.json"

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #666; } table { border-collapse: collapse; margin: .5rem 0; font-size: 14px; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; } td.best { font-weight: 700; background: #eef5ff; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: 13px; } img { max-width: 100%; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; } .note { color: #666; font-size: 13px; }
"""


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RESULTS
    try:
        results = json.loads(path.read_text())
    except OSError:
        raise ConfigError(f"{path} not found: give a folder written by `cinerec run`") from None
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(results, dict) or not results.get("models"):
        raise ConfigError(f"{path} lists no models")
    return results


def run_report(run_dir: str | Path, out: str | Path | None = None, recompute: bool = True) -> Path:
    """Write the HTML page of ``run_dir`` (default ``run_dir/report.html``). With
    ``recompute`` the run's data is loaded again for the significance markers and the
    variance figures (`cinerec.report.evidence`); the page says so when it cannot be."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    page = render(results, gather_evidence(results, run_dir) if recompute else None)
    out = Path(out) if out is not None else run_dir / "report.html"
    fs.write_text(out, page)
    return out


@dataclass
class Evidence:
    """What the page recomputes from the run's data (None fields: not available, see ``note``)."""

    significance: Any = None  # evidence.Significance
    variance: list[tuple[str, bytes]] = field(default_factory=list)
    note: str | None = None


def gather_evidence(results: dict[str, Any], run_dir: Path) -> Evidence:
    ctx, why = evidence.load_run_data(results)
    if ctx is None:
        return Evidence(note=why)
    return Evidence(significance=evidence.significance(results, run_dir, ctx), variance=evidence.variance_figures(ctx))


def render(results: dict[str, Any], extra: Evidence | None = None) -> str:
    k = int(results.get("k", 10))
    models = results["models"]
    cols = [c for c in ("rmse", "mae", "r2", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"hit@{k}",
                        "coverage", "fit_s", "topk_p50_ms", "model_bytes")
            if any(e["metrics"].get(c) is not None for e in models.values())]
    parts = [
        f"<h1>{_e(results.get('experiment', 'run'))}</h1>",
        f"<p class='meta'>{_e(results.get('data'))} · split {_e(results.get('split'))} · seed "
        f"{_e(results.get('seed'))} · K={k} · {len(models)} models · written "
        f"{time.strftime('%Y-%m-%d %H:%M')}</p>",
        "<h2>Metrics</h2>", _table(models, cols, extra.significance if extra else None),
        "<p class='note'>Best of each column in bold (lower is better for errors, times and size). "
        "Ranking metrics are over the full catalogue minus each user's training items.</p>",
    ]
    sig = extra.significance if extra else None
    if sig is not None and sig.best:
        leaders = ", ".join(f"{_e(m)}: {_e(lab)}" for m, lab in sig.best.items())
        parts.append(f"<p class='note' data-testid='significance'>Significance against the best model ({leaders}): "
                     f"<b>*</b> marks a value that differs from the best one at p &lt; {ALPHA} "
                     "(paired bootstrap of the RMSE difference over the same test rows; Wilcoxon signed-rank "
                     "test of per-user NDCG); no mark: the difference may be chance.</p>")
    charts = [m for m in (("rmse", "RMSE (lower is better)"), (f"ndcg@{k}", f"NDCG@{k}")) if m[0] in cols]
    if charts:
        parts.append("<h2>Per model (paper 004, Fig. 1)</h2><div class='grid'>")
        parts += [_figure(_bars(models, key), title, f"bars-{key}") for key, title in charts]
        parts.append("</div>")
    radar_cols = [c for c in cols if c not in ("fit_s", "topk_p50_ms", "model_bytes", "coverage")]
    if len(radar_cols) >= 3 and len(models) >= 2:
        parts += ["<h2>All metrics at once (paper 004, Fig. 2)</h2>",
                  _figure(_radar(models, radar_cols), "each metric rescaled to [0, 1] across the models "
                          "(1 = best; errors inverted)", "radar")]
    curves = {label: e["history"] for label, e in models.items() if e.get("history", {}).get("epoch")}
    if curves:
        parts += ["<h2>Loss per epoch (paper 003, Fig. 1)</h2>",
                  _figure(_losses(curves), "training (solid) and validation (dashed) loss", "losses")]
    squeezed = {label: e for label, e in models.items()
                if e["metrics"].get("model_bytes") and e["metrics"].get("rmse") is not None}
    if any(e.get("compress") for e in squeezed.values()):
        parts += ["<h2>Compression trade-off (paper 000, Fig. 3)</h2>",
                  _figure(_tradeoff(squeezed), "model bytes against RMSE; marker area: top-K latency p50",
                          "tradeoff")]
    if extra is not None and extra.variance:
        parts.append("<h2>Rating variance of the train part (paper 000, Fig. 4)</h2><div class='grid'>")
        captions = {"tiers_genres.png": "sigma and consistency (1 - sigma / sigma max) per rating tier and genre; "
                                        "crosses: the paper's claimed sigma",
                    "sigma_vs_mean.png": "each movie's rating sigma against its mean (movies with >= 10 ratings)"}
        parts += [_figure(png, captions.get(name, name), name.removesuffix(".png")) for name, png in extra.variance]
        parts.append("</div>")
    if extra is None:
        parts.append("<p class='note'>Significance markers and the variance figures were not computed "
                     "(<code>recompute=False</code>).</p>")
    elif extra.note:
        parts.append(f"<p class='note' data-testid='evidence-note'>No significance markers or variance figures: "
                     f"{_e(extra.note)}.</p>")
    body = "\n".join(parts)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(results.get('experiment'))}"
            f" · cinerec</title><style>{_CSS}</style></head><body>{body}</body></html>\n")


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _table(models: dict[str, Any], cols: list[str], sig: Any = None) -> str:
    records = [{"model": label, **e["metrics"]} for label, e in models.items()]
    best = best_rows(records, cols)
    head = "<tr><th>model</th>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
    alpha = ALPHA if sig is not None else 0.0

    def mark(label: str, col: str) -> str:
        p = sig.p.get(label, {}).get(col) if sig is not None else None
        return (f"<sup data-testid='sig' title='p = {p:.3g} against {_e(sig.best.get(col))}'>*</sup>"
                if p is not None and p < alpha else "")

    rows = []
    for i, rec in enumerate(records):
        cells = "".join(
            f"<td class='{'best' if i in best.get(c, ()) else ''}'>{_e(format_value(c, rec.get(c)))}"
            f"{mark(rec['model'], c)}</td>"
            for c in cols
        )
        rows.append(f"<tr><td>{_e(rec['model'])}</td>{cells}</tr>")
    return f"<table data-testid='metrics'>{head}{''.join(rows)}</table>"


def _figure(png: bytes, caption: str, name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure data-testid='figure-{_e(name)}'><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _bars(models: dict[str, Any], key: str) -> bytes:
    plt = _plt()
    labels = list(models)
    vals = [models[m]["metrics"].get(key) for m in labels]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels)), 3.2))
    bars = ax.bar(labels, [0.0 if v is None else float(v) for v in vals], color="#4c72b0")
    for bar, v in zip(bars, vals, strict=True):
        ax.annotate("n/a" if v is None else f"{float(v):.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    known = [float(v) for v in vals if v is not None]
    if key.split("@")[0] in LOWER_IS_BETTER and known and min(known) > 0:  # errors: zoom in on the spread
        ax.set_ylim(min(known) * 0.97, max(known) * 1.01)
    ax.set_ylabel(key)
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def _radar(models: dict[str, Any], cols: list[str]) -> bytes:
    plt = _plt()
    angles = [2 * math.pi * i / len(cols) for i in range(len(cols))] + [0.0]
    fig = plt.figure(figsize=(5.2, 5.2))
    ax = fig.add_subplot(polar=True)
    for label, e in models.items():
        vals = []
        for c in cols:
            column = [float(x["metrics"][c]) for x in models.values() if x["metrics"].get(c) is not None]
            v = e["metrics"].get(c)
            if v is None or not column or max(column) == min(column):
                vals.append(0.5 if v is not None else 0.0)
                continue
            share = (float(v) - min(column)) / (max(column) - min(column))
            vals.append(1 - share if c.split("@")[0] in LOWER_IS_BETTER else share)
        ax.plot(angles, vals + vals[:1], label=label)
        ax.fill(angles, vals + vals[:1], alpha=0.08)
    ax.set_xticks(angles[:-1], cols, fontsize=8)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "", "", ""])
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    return _png(fig)


def _losses(curves: dict[str, dict[str, Any]]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, h in curves.items():
        (line,) = ax.plot(h["epoch"], h["train_loss"], label=f"{label} train")
        valid = [(e, v) for e, v in zip(h["epoch"], h.get("valid_loss") or [], strict=False) if v is not None]
        if valid:
            ax.plot([e for e, _ in valid], [v for _, v in valid], linestyle="--", color=line.get_color(),
                    label=f"{label} valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return _png(fig)


def _tradeoff(models: dict[str, Any]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, e in models.items():
        m = e["metrics"]
        size = 30 + 40 * float(m.get("topk_p50_ms") or 0.5)
        ax.scatter(float(m["model_bytes"]) / 1e6, float(m["rmse"]), s=size, alpha=0.7,
                   marker="o" if not e.get("compress") else "s")
        ax.annotate(label, (float(m["model_bytes"]) / 1e6, float(m["rmse"])), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("model size (MB, log)")
    ax.set_ylabel("test RMSE")
    return _png(fig)


__all__ = ["Evidence", "gather_evidence", "load_results", "render", "run_report"]
