"""`SequenceRecommender`: the base of models that read a user's history as a sequence.

A subclass builds a module with an ``item_emb`` table (``n_items + 1`` rows, row 0 the
padding token) and ``encode(items, ratings, gaps) -> (B, L, d)`` hidden states, one per
position, position ``t`` having read inputs ``0..t`` only (causal). The score of item
``i`` after a history is ``h_last . e_i``: the last hidden state against the item's
embedding (input and output tables tied), so ranking is one matrix product and the
model is a maximum-inner-product space for an ANN index.

This class does the rest once for both sequence models:

- the users' training sequences in time order (`cinerec.train.sequences.Sequences`),
  stored in the artifact, so a warm user is scored from his latest ``max_len`` ratings;
- training through the shared `Trainer` on `SequenceBatches` (fresh windows and
  negatives each epoch), with the losses of the literature (`sequence_loss`):
  full-softmax cross-entropy (the default: no sampled-softmax bias, Klenitskiy &
  Vasilev 2023), sampled cross-entropy and BPR-max over shared negatives
  (GRU4Rec, Hidasi & Karatzoglou 2018), BCE with one negative per position (SASRec's
  original) and gSASRec's generalised BCE (Petrov & Macdonald 2023), which corrects
  the over-confidence negative sampling teaches;
- early stopping on 1 - NDCG@10 of held-out next items (each user's latest
  ``valid_fraction`` of training ratings, or the split's ``valid`` part), ranked over
  the full catalogue: the metric the models are judged by, never sampled;
- fold-in: a `History` (a new visitor's ratings, or a known user's training sequence
  with fresh feedback appended) is encoded like a training sequence, in time order
  when it has timestamps and in the given order otherwise;
- explanations: the recent rated movies whose embeddings are closest to the
  recommended one (`BecauseYouRated`, cosine similarity).

Scores are not ratings (``predicts_ratings = False``): RMSE is not defined for them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.data.splits import user_temporal_split
from cinerec.errors import ArtifactError
from cinerec.models.explain import BecauseYouRated, Explanation
from cinerec.models.query import History
from cinerec.models.retrieval import RetrievalSpace, factor_space
from cinerec.models.torch.base import TorchModelConfig, TorchRecommender, dot_all
from cinerec.train.sequences import SequenceBatches, Sequences

Loss = Literal["ce", "sampled-ce", "bpr-max", "bce", "gbce"]
#: Losses that draw one set of negatives per position (the others share one per batch).
PER_POSITION = {"bce", "gbce"}


class SequenceConfig(TorchModelConfig):
    """Hyper-parameters shared by the sequence models."""

    #: Latest ratings a user is scored from (and the length of training windows).
    max_len: int = Field(50, ge=1, le=4096)
    embedding_dim: int = Field(64, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    loss: Loss = "ce"
    #: Negatives per batch (sampled-ce, bpr-max) or per position (gbce); bce draws one.
    n_negatives: int = Field(256, ge=1)
    #: Negatives are drawn in proportion to train count ** alpha (0 uniform, 1 popularity).
    negative_alpha: float = Field(0.0, ge=0, le=1)
    #: gSASRec's calibration t in [0, 1] (0 is plain BCE).
    gbce_t: float = Field(0.75, ge=0, le=1)
    #: BPR-max's score regularisation (Hidasi & Karatzoglou 2018; 0.1 suits unbounded dot-product scores).
    bpr_max_reg: float = Field(0.1, ge=0)
    #: Add embeddings of each input's rating (half-star level) / time gap to the previous one.
    use_ratings: bool = False
    use_time_gaps: bool = False
    #: Learn to predict only next items rated at least this (inputs keep every rating).
    target_min_rating: float | None = None
    #: Each position learns its next ``horizon`` items, not only the next one ("ce" only).
    horizon: int = Field(1, ge=1, le=512)

    @model_validator(mode="after")
    def _horizon_needs_full_softmax(self) -> SequenceConfig:
        if self.horizon > 1 and self.loss != "ce":
            raise ValueError(f"horizon={self.horizon} needs loss='ce' (the full softmax), not {self.loss!r}")
        return self
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    early_stopping_patience: int | None = 5
    valid_fraction: float = Field(0.05, ge=0, lt=1)


class SequenceRecommender(TorchRecommender):
    """Base of `GRU4Rec` and `SASRec` (see the module docstring)."""

    Config: ClassVar[type[SequenceConfig]] = SequenceConfig
    predicts_ratings = False
    folds_in = True
    scores_pairs = True
    embedding_paths = ("item_emb",)
    #: The train part being fitted and its sequences, only while the Trainer runs.
    _fit_part: Dataset | None = None
    _fit_seqs: Sequences | None = None

    # ---- training -----------------------------------------------------------------------
    def _sequences(self, data: Dataset) -> Sequences:
        return Sequences.from_rows(data.users, data.items, data.ratings, data.timestamps, data.n_users,
                                   self.rating_scale_)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.seqs_ = self._sequences(train)
        super()._fit(train, valid)

    def _training_parts(self, train: Dataset, valid: Dataset | None) -> tuple[Dataset, Dataset | None]:
        """Without ``valid``: each user's latest ``valid_fraction`` of ratings (at least
        one, users with 3+ ratings), so validation asks what the model is for."""
        needs_valid = self.config.early_stopping_patience is not None or self.config.schedule == "plateau"
        if valid is None and needs_valid and self.config.valid_fraction > 0:
            split = user_temporal_split(train, test_frac=self.config.valid_fraction, min_train=2)
            if split.test.n_ratings:
                return split.train, split.test
        return train, valid

    def train_tensors(self, train: Dataset) -> SequenceBatches:
        c = self.config
        seqs = self._fit_seqs if self._fit_part is train else self._sequences(train)
        target_ok = None
        if c.target_min_rating is not None:
            target_ok = seqs.rating_values(self.rating_scale_) >= c.target_min_rating
        sampled = c.loss != "ce"
        return SequenceBatches(
            seqs, c.max_len, c.batch_size, target_ok=target_ok,
            n_negatives=(1 if c.loss == "bce" else c.n_negatives) if sampled else 0, per_position=c.loss in PER_POSITION,
            item_counts=train.item_counts, negative_alpha=c.negative_alpha, horizon=c.horizon,
        )  # fmt: skip

    def _run_trainer(self, train: Dataset, valid: Dataset | None, options: Any, **overrides: Any):
        # The fit part's sequences, built once for the batch source and the validation.
        self._fit_part, self._fit_seqs = train, self._sequences(train)
        try:
            return super()._run_trainer(train, valid, options, **overrides)
        finally:
            self._fit_part = self._fit_seqs = None

    def valid_tensors(self, valid: Dataset) -> Any:
        """A callable the Trainer calls each epoch: 1 - NDCG@10 of the held-out items,
        ranked over the catalogue minus what the fit part holds."""
        seqs, seen, counts = self._fit_seqs, self._fit_part.to_csr(values=None).astype(bool), self._fit_part.item_counts
        gains = 1.0 / np.log2(np.arange(2, 12))
        relevant = valid.to_csr(values=None).astype(bool)
        users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (seqs.lengths > 0))
        cold = torch.as_tensor(counts == 0, device=self.device)

        def one_minus_ndcg(module: nn.Module) -> float:
            total = 0.0
            for s in range(0, users.shape[0], 512):
                u = users[s : s + 512]
                scores = self._scores_from_windows(module, seqs.windows(u, self.config.max_len))
                scores[torch.as_tensor(seen[u].toarray(), device=self.device)] = -torch.inf
                scores[:, cold] = -torch.inf
                top = torch.topk(scores, 10, dim=1).indices.cpu().numpy()
                rel = relevant[u]
                hits = np.take_along_axis(rel.toarray(), top, axis=1)
                ideal = np.cumsum(gains)[np.minimum(np.diff(rel.indptr), 10) - 1]
                total += float(((hits * gains).sum(1) / ideal).sum())
            return 1.0 - total / max(users.shape[0], 1)

        return one_minus_ndcg

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        L = self.config.max_len
        hidden = module.encode(batch["items"][:, :L], batch["ratings"][:, :L], batch["gaps"][:, :L])
        mask = batch["mask"]
        if self.config.horizon > 1:
            return horizon_loss(module.item_emb, hidden[mask], batch["items"], batch["target_ok"], mask, L)
        targets = batch["items"][:, 1 : L + 1][mask]
        negatives = batch.get("negatives")
        if negatives is not None and negatives.dim() == 3:
            negatives = negatives[mask]
        loss = sequence_loss(self.config, module.item_emb, hidden[mask], targets, negatives, self.n_items_)
        return loss, int(targets.shape[0])

    # ---- scoring ------------------------------------------------------------------------
    def _scores_from_windows(self, module: nn.Module, windows: dict[str, Tensor]) -> Tensor:
        return dot_all(module.item_emb, self._last_hidden(module, windows))[:, 1:]

    def _last_hidden(self, module: nn.Module, windows: dict[str, Tensor]) -> Tensor:
        w = {k: v.to(self.device) for k, v in windows.items()}
        return module.encode(w["items"], w["ratings"], w["gaps"])[:, -1]

    @torch.no_grad()
    def _hidden(self, seqs: Sequences, rows: np.ndarray) -> np.ndarray:
        """Last hidden state of each row of ``seqs`` (B, d), in batches."""
        module = self._module()
        module.eval()
        out = []
        for s in range(0, rows.shape[0], 1024):
            out.append(self._last_hidden(module, seqs.windows(rows[s : s + 1024], self.config.max_len)).float().cpu())
        d = self.config.embedding_dim
        return torch.cat(out).numpy() if out else np.zeros((0, d), np.float32)

    @torch.no_grad()
    def _dot(self, hidden: np.ndarray) -> np.ndarray:
        h = torch.as_tensor(hidden, device=self.device)
        return dot_all(self._module().item_emb, h)[:, 1:].float().cpu().numpy()

    @torch.no_grad()
    def _pair_dot(self, hidden: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        e = self._module().item_emb(torch.as_tensor(np.asarray(items, np.int64) + 1, device=self.device))
        h = torch.as_tensor(hidden[rows], device=self.device)
        return (h * e).sum(-1).float().cpu().numpy()

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._dot(self._hidden(self.seqs_, users))

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, rows = np.unique(users, return_inverse=True)
        return self._pair_dot(self._hidden(self.seqs_, uniq), rows, items)

    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:  # pragma: no cover - _predict is overridden
        return torch.as_tensor(self._predict(users.cpu().numpy(), items.cpu().numpy()))

    def _score_module(self, users: Tensor) -> Tensor:  # pragma: no cover - _score is overridden
        return torch.as_tensor(self._score(users.cpu().numpy()))

    # ---- histories ----------------------------------------------------------------------
    def train_history(self, user: int) -> History:
        """The user's training ratings in time order (a history in the given order is
        read as a sequence; the stored sequences keep no timestamps)."""
        if not 0 <= user < self.n_users_ or getattr(self, "seqs_", None) is None:
            return History.empty()
        s, e = self.seqs_.indptr[user], self.seqs_.indptr[user + 1]
        ratings = self.seqs_.rating_values(self.rating_scale_)[s:e]
        return History(self.seqs_.items[s:e].astype(np.int64) - 1, ratings)

    def _history_sequences(self, histories: list[History]) -> Sequences:
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        items = np.concatenate([h.items for h in histories]) if histories else np.empty(0, np.int64)
        ratings = np.concatenate([h.ratings for h in histories]) if histories else np.empty(0, np.float32)
        # Time order needs every history's timestamps; otherwise the given order.
        timed = histories and all(h.timestamps is not None for h in histories)
        ts = np.concatenate([h.timestamps for h in histories]) if timed else None
        return Sequences.from_rows(rows, items, ratings, ts, len(histories), self.rating_scale_)

    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, Sequences]:
        seqs = self._history_sequences(histories)
        return self._hidden(seqs, np.arange(len(histories))), seqs

    def _score_folded(self, folded: tuple[np.ndarray, Sequences]) -> np.ndarray:
        return self._dot(folded[0])

    def _predict_folded(self, folded: tuple[np.ndarray, Sequences], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._pair_dot(folded[0], rows, items)

    # ---- explanations, similarity, retrieval ----------------------------------------------
    @torch.no_grad()
    def _item_rows(self, items: np.ndarray) -> np.ndarray:
        idx = torch.as_tensor(np.asarray(items, dtype=np.int64) + 1, device=self.device)
        return self._module().item_emb(idx).float().cpu().numpy()

    def _because(self, recent: np.ndarray, items: np.ndarray) -> list[Explanation | None]:
        """The (up to) three recent rated items closest to each recommended item."""
        if recent.size == 0:
            return [BecauseYouRated((), ()) for _ in items]
        a, b = _unit(self._item_rows(items)), _unit(self._item_rows(recent))
        sims = a @ b.T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :3]
        return [
            BecauseYouRated(tuple(int(recent[t]) for t in row), tuple(float(sims[j, t]) for t in row),
                            measure="similarity to your recent ratings")
            for j, row in enumerate(top)
        ]  # fmt: skip

    def _recent(self, seqs: Sequences, row: int) -> np.ndarray:
        s, e = seqs.indptr[row], seqs.indptr[row + 1]
        return seqs.items[max(s, e - self.config.max_len) : e].astype(np.int64) - 1

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        return self._because(self._recent(self.seqs_, user), items)

    def _explain_folded(self, folded: tuple[np.ndarray, Sequences], row: int, items: np.ndarray) -> list[Explanation | None]:
        return self._because(self._recent(folded[1], row), items)

    def _item_vectors(self) -> np.ndarray | None:
        return self._item_rows(np.arange(self.n_items_))

    def retrieval_space(self) -> RetrievalSpace | None:
        """``x = h_last``, ``y_i = e_i``: the score is their inner product."""
        self._check_fitted()
        return factor_space(self, self._item_rows(np.arange(self.n_items_)), None,
                            lambda users: self._hidden(self.seqs_, users), lambda folded: folded[0])

    # ---- persistence ----------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        s = self.seqs_
        return super()._state() | {
            "seq.indptr": s.indptr, "seq.items": s.items, "seq.ratings": s.ratings, "seq.gaps": s.gaps,
        }  # fmt: skip

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        arrays = dict(arrays)
        self.seqs_ = Sequences(
            indptr=arrays.pop("seq.indptr").astype(np.int64), items=arrays.pop("seq.items").astype(np.int32),
            ratings=arrays.pop("seq.ratings").astype(np.int16), gaps=arrays.pop("seq.gaps").astype(np.int16),
        )  # fmt: skip
        super()._load_state(arrays, tables)

    def _check_state(self) -> None:
        s = self.seqs_
        n = int(s.indptr[-1]) if s.indptr.size else 0
        if s.indptr.shape != (self.n_users_ + 1,) or any(a.shape != (n,) for a in (s.items, s.ratings, s.gaps)):
            raise ArtifactError("the stored training sequences disagree with the number of users")
        if n and (s.items.min() < 1 or s.items.max() > self.n_items_):
            raise ArtifactError("the stored training sequences hold items outside the catalogue")


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def sequence_loss(
    config: SequenceConfig, table: nn.Module, hidden: Tensor, targets: Tensor, negatives: Tensor | None,
    n_items: int,
) -> Tensor:  # fmt: skip
    """Mean loss of next-item ``targets`` (item tokens, (P,)) given ``hidden`` (P, d).

    ``negatives``: item tokens, (K,) shared by every position or (P, K) per position.
    A negative equal to its position's target is ignored (an accidental hit).
    """
    pos = (hidden * table(targets)).sum(-1)
    if config.loss == "ce":
        logits = dot_all(table, hidden)[:, 1:]
        return F.cross_entropy(logits, targets - 1)
    assert negatives is not None
    if negatives.dim() == 1:
        neg = hidden @ table(negatives).T
        hit = negatives[None, :] == targets[:, None]
    else:
        neg = torch.einsum("pd,pkd->pk", hidden, table(negatives))
        hit = negatives == targets[:, None]
    if config.loss == "sampled-ce":
        logits = torch.cat([pos[:, None], neg.masked_fill(hit, -torch.inf)], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets))
    if config.loss == "bpr-max":
        weights = torch.softmax(neg.masked_fill(hit, -torch.inf), dim=1)
        ranked = (weights * torch.sigmoid(pos[:, None] - neg)).sum(1)
        return (-torch.log(ranked + 1e-24) + config.bpr_max_reg * (weights * neg.pow(2)).sum(1)).mean()
    # bce / gbce: gSASRec's beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (n - 1).
    k = negatives.shape[-1]
    t = config.gbce_t if config.loss == "gbce" else 0.0
    alpha = k / max(n_items - 1, 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    neg_term = F.logsigmoid(-neg).masked_fill(hit, 0.0).sum(1)
    return -(beta * F.logsigmoid(pos) + neg_term).mean()


def horizon_loss(table: nn.Module, hidden: Tensor, items: Tensor, target_ok: Tensor, mask: Tensor,
                 max_len: int) -> tuple[Tensor, int]:
    """Full-softmax cross-entropy of each masked position's next ``horizon`` items (one
    softmax per position, every usable target of it): (mean loss, number of targets)."""
    logp = torch.log_softmax(dot_all(table, hidden)[:, 1:], dim=1)
    rows, cols = mask.nonzero(as_tuple=True)  # the order of hidden's rows
    ahead = cols[:, None] + torch.arange(1, items.shape[1] - max_len + 1, device=items.device)[None, :]
    ok = target_ok[rows[:, None], ahead]
    picked = logp.gather(1, (items[rows[:, None], ahead] - 1).clamp(min=0))
    count = int(ok.sum())
    return -(picked * ok).sum() / max(count, 1), count


class SequenceModule(nn.Module):
    """Input embeddings shared by the sequence modules: item (+ rating level, + time
    gap) tokens, summed, then dropout."""

    def __init__(self, n_items: int, dim: int, n_ratings: int, n_gaps: int, config: SequenceConfig):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, 0.0, 1.0 / math.sqrt(dim))
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.rating_emb = nn.Embedding(n_ratings, dim, padding_idx=0) if config.use_ratings else None
        self.gap_emb = nn.Embedding(n_gaps, dim, padding_idx=0) if config.use_time_gaps else None
        self.dropout = nn.Dropout(config.dropout)

    def embed(self, items: Tensor, ratings: Tensor, gaps: Tensor) -> Tensor:
        x = self.item_emb(items)
        if self.rating_emb is not None:
            x = x + self.rating_emb(ratings)
        if self.gap_emb is not None:
            x = x + self.gap_emb(gaps)
        return self.dropout(x)

