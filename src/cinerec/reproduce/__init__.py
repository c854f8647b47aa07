"""Paper reproductions: ``cinerec reproduce paper-002``.

Each paper of ``../shared/papers`` has an experiment file here (``papers/paper-NNN.toml``,
shipped with the package) whose ``[paper]`` table lists the paper's numbers as cells:
the paper's table, row and metric, the claimed value, the label of the run's model
that measures it and the key measured, and one line saying why ours differs.
`reproduce` runs the file through the same machinery as ``cinerec run`` (artifacts,
``results.json``, resumable: a second call reads finished models back), measures every
cell, and writes the side-by-side table to ``OUT/reproduction.md`` and ``.json``.

What a cell's ``key`` may be (`DERIVED`): any metric of ``results.json`` (``rmse``,
``ndcg@10``, ``fit_s`` ...), or one computed here from the saved artifact and the
split it was trained on, for the things that are not one of the protocol's metrics:

- ``norm:r2`` / ``norm:mae`` / ``norm:mse`` / ``norm:rmse``, ``liked:precision`` /
  ``liked:recall``: paper 004's metrics on the MinMax-normalised rating, "liked" =
  rating >= 3.5 (`cinerec.evaluation.metrics.normalised_rating_metrics`);
- ``own:precision@K`` (``recall``, ``f1``, ``ndcg``, ``hit``): ranking only each user's
  own test movies, the protocol papers 002 and 004 used (docs/evaluation.md says why it
  inflates every figure); printed beside the full-catalogue figure;
- ``s_per_epoch``, ``epochs``: from the loss history of a torch model;
- ``emb:ratio``, ``emb:mb``: the embedding tables' fp32 / compressed bytes;
- ``ml25m:gb``: the same table format at ML-25M's shape (162,541 users x 62,423 movies,
  empty tables: bytes do not depend on the values);
- ``variance:QUANTITY``: paper 000's variance statistics of the whole data set
  (`cinerec.stats.analyze`, the quantities of `cinerec.stats.claims.PAPER_CLAIMS`); no
  model.

A cell's ``claimed`` is a number, ``">LABEL"`` / ``"<LABEL"`` (a claim that this model
beats, or stays under, model LABEL on the same key: checked), or free text (shown).
Cells that cannot run here say why in ``not_run`` and print as "not run" rows.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cinerec._util import fs
from cinerec.errors import ConfigError
from cinerec.experiment_file import ExperimentFile, PaperCell, PaperSpec

#: The experiment files of the papers (package data, so an installed cinerec has them).
PAPERS = Path(__file__).parent / "papers"
#: Files written into the run folder.
MARKDOWN, JSON = "reproduction.md", "reproduction.json"
#: "Liked" in paper 004's precision and recall.
LIKED = 3.5
#: ML-25M's shape, for ``ml25m:gb``.
ML25M_USERS, ML25M_ITEMS = 162_541, 62_423
#: Keys computed here (besides every results.json metric); ``own:`` takes ``NAME@K``.
DERIVED = (
    "norm:r2", "norm:mae", "norm:mse", "norm:rmse", "liked:precision", "liked:recall",
    "own:NAME@K", "s_per_epoch", "epochs", "emb:ratio", "emb:mb", "ml25m:gb", "variance:QUANTITY",
)  # fmt: skip
_ORDER = re.compile(r"^\s*([<>])\s*(\S.*?)\s*$")


def available() -> list[str]:
    """Paper ids with a shipped experiment file (``paper-000`` ...)."""
    return sorted(p.stem for p in PAPERS.glob("paper-*.toml"))


def paper_path(name: str | Path) -> Path:
    """The experiment file of ``name``: a shipped paper id, or a path to a TOML file."""
    p = Path(name)
    if p.suffix == ".toml":
        if not p.is_file():
            raise ConfigError(f"experiment file {p} does not exist")
        return p
    if str(name) in available():
        return PAPERS / f"{name}.toml"
    raise ConfigError(f"no reproduction named {str(name)!r}; known: {', '.join(available())} (or a .toml path)")


@dataclass
class Row:
    """One cell, measured and compared."""

    table: str
    row: str
    metric: str
    claimed: float | str | None
    measured: float | None
    difference: float | None
    verdict: str  # agrees | differs | holds | fails | not run | missing | shown
    reason: str
    model: str | None = None
    key: str | None = None


@dataclass
class Reproduction:
    """A paper's cells beside cinerec's measurements, and where the run lives."""

    paper: str
    title: str
    out: str
    seconds: float
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        s = self.setup
        lines = [f"# {self.paper}: {self.title}", "",
                 f"cinerec's run: data `{s.get('data')}`, split `{s.get('split')}` seed {s.get('seed')}, "
                 f"K = {s.get('k')}; {self.seconds:.0f} s; artifacts and results.json in `{self.out}`.", "",
                 "| table | row | metric | paper | cinerec | difference | verdict | reason |",
                 "|---|---|---|---:|---:|---:|---|---|"]  # fmt: skip
        for r in self.rows:
            cells = [r.table, r.row, r.metric, fmt_claim(r.claimed), fmt_value(r.measured),
                     fmt_difference(r), r.verdict, r.reason]  # fmt: skip
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"


# ---- comparison (pure) -------------------------------------------------------------------
def compare_cell(cell: PaperCell, measured: float | None, reference: float | None = None) -> Row:
    """``cell`` beside ``measured`` (``reference``: the other model's value on the same
    key, for a ``>LABEL`` / ``<LABEL`` claim). The reason is shown where they differ."""
    base = {"table": cell.table, "row": cell.row, "metric": cell.metric, "claimed": cell.claimed,
            "model": cell.model, "key": cell.key}  # fmt: skip
    if cell.not_run is not None:
        return Row(**base, measured=None, difference=None, verdict="not run", reason=cell.not_run)
    if measured is None or not math.isfinite(measured):
        why = f"{cell.model or 'the data'} gave no {cell.key}" + (f"; {cell.reason}" if cell.reason else "")
        return Row(**base, measured=None, difference=None, verdict="missing", reason=why)
    claimed = cell.claimed
    if isinstance(claimed, int | float) and not isinstance(claimed, bool):
        diff = measured - float(claimed)
        close = abs(diff) <= cell.tolerance * max(abs(float(claimed)), 1e-12)
        return Row(**base, measured=measured, difference=diff, verdict="agrees" if close else "differs",
                   reason="" if close else cell.reason)
    order = _ORDER.match(claimed) if isinstance(claimed, str) else None
    if order:
        if reference is None or not math.isfinite(reference):
            return Row(**base, measured=measured, difference=None, verdict="missing",
                       reason=f"{order.group(2)} gave no {cell.key}")
        diff = measured - reference
        holds = diff > 0 if order.group(1) == ">" else diff < 0
        return Row(**base, measured=measured, difference=diff, verdict="holds" if holds else "fails",
                   reason="" if holds else cell.reason)
    return Row(**base, measured=measured, difference=None, verdict="shown", reason=cell.reason)


def order_reference(cell: PaperCell) -> str | None:
    """The model label a ``>LABEL`` / ``<LABEL`` claim compares with (None otherwise)."""
    m = _ORDER.match(cell.claimed) if isinstance(cell.claimed, str) else None
    return m.group(2) if m else None


def fmt_value(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}" if abs(v) >= 10 else f"{v:.4f}"


def fmt_claim(v: float | str | None) -> str:
    return "-" if v is None else v if isinstance(v, str) else fmt_value(float(v))


def fmt_difference(r: Row) -> str:
    if r.difference is None:
        return "-"
    text = ("+" if r.difference >= 0 else "") + fmt_value(r.difference)
    if isinstance(r.claimed, int | float) and r.claimed:
        text += f" ({r.difference / abs(float(r.claimed)):+.0%})"
    elif isinstance(r.claimed, str) and (ref := _ORDER.match(r.claimed)):
        text += f" vs {ref.group(2)}"
    return text


# ---- measuring -------------------------------------------------------------------------
class Measurer:
    """Values of cell keys for one finished run (artifacts and the context loaded lazily)."""

    def __init__(self, exp: ExperimentFile, results: dict[str, Any], out: Path, progress: bool = False):
        self.exp, self.results, self.out, self.progress = exp, results, Path(out), progress
        self._ctx: Any = None
        self._models: dict[str, Any] = {}
        self._variance: dict[str, float] | None = None

    @property
    def ctx(self) -> Any:
        if self._ctx is None:
            from cinerec import experiment

            self._ctx = experiment.load_context(self.exp.data.name, self.exp.split.spec, self.exp.split.seed,
                                                progress=self.progress)
        return self._ctx

    def model(self, label: str) -> Any:
        if label not in self._models:
            from cinerec import artifacts

            self._models[label] = artifacts.load_model(self.out / label)
        return self._models[label]

    def value(self, key: str, label: str | None) -> float | None:
        if key.startswith("variance:"):
            return self._variance_value(key.removeprefix("variance:"))
        if label is None:
            raise ConfigError(f"key {key!r} needs a model label")
        entry = self.results["models"].get(label)
        if entry is None:
            raise ConfigError(f"the run has no model {label!r}")
        metrics = entry.get("metrics", {})
        if key in metrics:
            return _num(metrics[key])
        if key in ("s_per_epoch", "epochs"):
            epochs = len((entry.get("history") or {}).get("epoch") or [])
            if not epochs:
                return None
            return float(epochs) if key == "epochs" else _num(metrics.get("fit_s"), 1.0 / epochs)
        if key.startswith(("norm:", "liked:")):
            return _num(self._normalised(label).get(_normalised_name(key)))
        if key.startswith("own:"):
            return self._own(label, key.removeprefix("own:"))
        if key in ("emb:ratio", "emb:mb", "ml25m:gb"):
            return self._bytes(label, key)
        raise ConfigError(f"unknown key {key!r} for {label!r}: a results.json metric ({', '.join(metrics)}) "
                          f"or one of {', '.join(DERIVED)}")

    def _predictions(self, label: str) -> np.ndarray:
        test = self.ctx.split.test
        return np.asarray(self.model(label).predict(test.users, test.items), dtype=np.float64)

    def _normalised(self, label: str) -> dict[str, float]:
        from cinerec.evaluation.metrics import normalised_rating_metrics

        test = self.ctx.split.test
        return normalised_rating_metrics(test.ratings, self._predictions(label), self.ctx.split.train.rating_scale,
                                         LIKED)

    def _own(self, label: str, name_k: str) -> float | None:
        return own_items_metrics(self.model(label), self.ctx.split, name_k, self.exp.evaluation.k)

    def _bytes(self, label: str, key: str) -> float | None:
        from cinerec.compress.api import embedding_bytes

        model = self.model(label)
        if not hasattr(model, "embedding_tables") or not model.embedding_tables():
            return None
        b = embedding_bytes(model)
        if key == "emb:ratio":
            return float(b["ratio"])
        if key == "emb:mb":
            return b["compressed_bytes"] / 1e6
        return ml25m_bytes(model, self.ctx.split.train.n_users) / 1e9

    def _variance_value(self, quantity: str) -> float | None:
        if self._variance is None:
            from cinerec.stats import analyze

            table = analyze(self.ctx.dataset).paper_comparison()
            self._variance = dict(zip(table.get_column("quantity").to_list(),
                                      table.get_column("measured").to_list(), strict=True))
        if quantity not in self._variance:
            raise ConfigError(f"variance:{quantity}: not a quantity of the variance analysis "
                              f"({', '.join(self._variance)})")
        return _num(self._variance[quantity])


def _num(v: Any, scale: float = 1.0) -> float | None:
    if v is None:
        return None
    v = float(v) * scale
    return v if math.isfinite(v) else None


def _normalised_name(key: str) -> str:
    kind, name = key.split(":", 1)
    names = {"norm": ("r2", "mae", "mse", "rmse"), "liked": ("precision", "recall")}[kind]
    if name not in names:
        raise ConfigError(f"unknown key {key!r}; {kind}: takes {', '.join(names)}")
    return f"n_{name}" if kind == "norm" else name


def own_items_metrics(model: Any, split: Any, name_k: str, default_k: int = 10, threshold: float = 4.0) -> float | None:
    """A ranking metric (``ndcg@10``, ``precision`` ...) when each user's candidates are
    only the movies he rated in test, the protocol of papers 002 and 004."""
    from cinerec.evaluation.metrics import (
        mean_metrics,
        own_items_topk,
        ranking_metrics,
        relevance_matrix,
    )

    name, _, k_text = name_k.partition("@")
    k = int(k_text) if k_text else default_k
    names = {"precision": "precision", "recall": "recall", "f1": "f1", "ndcg": "ndcg", "hit": "hit", "map": "ap"}
    if name not in names:
        raise ConfigError(f"own:{name_k}: takes one of {', '.join(names)} (with @K)")
    test = split.test
    if not getattr(model, "predicts_ratings", True):
        # a ranking-only model: its catalogue scores of each user's own test items, one
        # `score` call per block of users
        users_u, row_of = np.unique(test.users, return_inverse=True)
        scores = np.empty(test.n_ratings)
        for s in range(0, users_u.size, 1024):
            block = np.flatnonzero((row_of >= s) & (row_of < s + 1024))
            catalogue = np.asarray(model.score(users_u[s : s + 1024]), dtype=np.float64)
            scores[block] = catalogue[row_of[block] - s, test.items[block]]
    else:
        scores = np.asarray(model.predict(test.users, test.items), dtype=np.float64)
    rel = relevance_matrix(test.users, test.items, test.ratings, split.train.n_users, split.train.n_items, threshold)
    users, top = own_items_topk(test.users, test.items, scores, k)
    has_rel = np.diff(rel.indptr)[users] > 0
    if not has_rel.any():
        return None
    means = mean_metrics(ranking_metrics(top[has_rel], rel[users[has_rel]], k))
    return _num(means[names[name]])


def ml25m_bytes(model: Any, n_users: int) -> int:
    """Bytes of ``model``'s user and item tables in their current format at ML-25M's shape
    (each table rebuilt empty with ML-25M's row count; a table of ``n_users`` rows, or
    named for users, is a user table; the largest table's format is used for all, since
    at that size no table is small enough to fall back to INT8)."""
    from cinerec.compress.api import _shape
    from cinerec.compress.codecs import module_from_spec

    tables = model.embedding_tables()
    spec = (getattr(model, "compression", None) or {}).get("tables") or {}
    widest = max(tables, key=lambda p: _shape(tables[p])[0])
    total = 0
    for path, table in tables.items():
        rows, d = _shape(table)
        n = ML25M_USERS if "user" in path.lower() or rows == n_users else ML25M_ITEMS
        if not spec:
            total += n * d * 4
            continue
        s = dict(spec[widest]) | {"num_embeddings": n, "embedding_dim": d}
        total += int(module_from_spec(s).nbytes())
    return total


# ---- running ------------------------------------------------------------------------------
def load_paper(name: str | Path) -> tuple[ExperimentFile, PaperSpec, Path]:
    """The experiment, its ``[paper]`` table and the file (`ConfigError` if it has none)."""
    from cinerec import experiment_file

    path = paper_path(name)
    exp, _ = experiment_file.load(path)
    if exp.paper is None:
        raise ConfigError(f"{path} has no [paper] table: nothing to compare (use `cinerec run {path}`)")
    return exp, exp.paper, path


def measure_rows(exp: ExperimentFile, results: dict[str, Any], out: Path, progress: bool = False) -> list[Row]:
    """Every cell of ``exp.paper`` measured on the finished run in ``out``."""
    m = Measurer(exp, results, out, progress)
    rows = []
    for cell in exp.paper.cells if exp.paper else []:
        if cell.not_run is not None:
            rows.append(compare_cell(cell, None))
            continue
        ref_label = order_reference(cell)
        ref = m.value(cell.key, ref_label) if ref_label else None
        rows.append(compare_cell(cell, m.value(cell.key, cell.model), ref))
    return rows


def reproduce(name: str | Path, out: str | Path | None = None, progress: bool = True,
              options: Any = None) -> Reproduction:
    """Run paper ``name``'s experiment (resumable) into ``out`` (default ``runs/<id>``),
    measure its cells, write ``reproduction.md`` / ``.json`` there; the result."""
    from cinerec import experiment_file

    exp, paper, path = load_paper(name)
    out = Path(out) if out is not None else Path("runs") / paper.id
    t0 = time.perf_counter()
    results = experiment_file.run(path, progress=progress, options=options, output=out)
    rows = measure_rows(exp, results, out, progress)
    rep = Reproduction(paper=paper.id, title=paper.title, out=str(out), seconds=time.perf_counter() - t0,
                       rows=rows, notes=list(paper.notes),
                       setup={"data": exp.data.name, "split": exp.split.spec, "seed": exp.split.seed,
                              "k": exp.evaluation.k, "file": paper.file,
                              "reused": sorted(k for k, e in results["models"].items() if e.get("reused"))})
    fs.write_text(out / MARKDOWN, rep.to_markdown())
    fs.write_text(out / JSON, json.dumps(rep.to_dict(), indent=2, default=str) + "\n")
    return rep
