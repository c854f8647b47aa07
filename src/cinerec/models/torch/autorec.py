"""`AutoRec` ("autorec"): item-based AutoRec (Sedhain et al., WWW 2015).

Each item is the vector of its users' ratings r_i (0 where unobserved). The network
reconstructs it, h = sigmoid(V r_i + b), r_hat_i = W h + c, and only observed entries
count in the loss (plus L2 on the weights, here Adam's ``weight_decay``). The
prediction for (u, i) is entry u of item i's reconstruction. This is the "deep
autoencoder" baseline of paper 000.

Both weight matrices are user-indexed tables, so they are stored as embeddings over
users and computed sparsely (no dense n_items x n_users matrix, which would not fit
for MovieLens 25M):

- ``encoder`` (n_users x hidden): V r_i = sum over i's raters u of r_ui * encoder(u);
- ``decoder`` (n_users x hidden) and ``decoder_bias`` (n_users x 1):
  r_hat_ui = decoder(u) . h_i + decoder_bias(u).

`embedding_tables` exposes ``encoder`` and ``decoder`` (the two large tables).

Fold-in: a new user has no decoder row, but the item codes ``h_i`` are fixed, so the
user's row and bias are a ridge regression of their ratings on the codes of the items
they rated (``fold_in_reg`` per rating, the bias shrunk toward the global mean). Their
own ratings do not enter the codes (they have no encoder row), as when a trained
model scores a user's held-out items. `similar_items` compares item codes (cosine).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.models.base import ModelConfig
from cinerec.models.foldin import ridge_user_factors
from cinerec.models.query import History
from cinerec.models.search import FloatRange, IntRange, Param
from cinerec.models.torch.base import TorchModelConfig, TorchRecommender


class AutoRecConfig(TorchModelConfig):
    hidden: int = Field(500, ge=1)
    epochs: int = 200
    batch_size: int = 64
    #: Measured on ml-latest-small: lr 1e-3 overfits after 2 epochs (RMSE 0.903-0.907),
    #: 2e-4 reaches 0.883.
    lr: float = 2e-4
    #: Adam's L2 (the paper's lambda, up to the loss's per-rating normalisation).
    weight_decay: float = 1e-3
    early_stopping_patience: int | None = 4
    #: Per-rating ridge penalty of a new user's decoder row when folding them in.
    fold_in_reg: float = Field(0.1, gt=0)


class AutoRecModule(nn.Module):
    """User-indexed encoder/decoder tables and the hidden bias."""

    def __init__(self, n_users: int, hidden: int, global_mean: float = 0.0):
        super().__init__()
        self.encoder = nn.Embedding(n_users, hidden)
        self.encoder_bias = nn.Parameter(torch.zeros(hidden))
        self.decoder = nn.Embedding(n_users, hidden)
        self.decoder_bias = nn.Embedding(n_users, 1)
        # Xavier-like scale of a dense n_users -> hidden layer.
        bound = float(np.sqrt(6.0 / (n_users + hidden)))
        nn.init.uniform_(self.encoder.weight, -bound, bound)
        nn.init.uniform_(self.decoder.weight, -bound, bound)
        # Output bias starts at the global mean (the paper leaves it unspecified): the
        # first epochs then learn deviations instead of the scale.
        nn.init.constant_(self.decoder_bias.weight, global_mean)

    def encode(self, rows: Tensor, users: Tensor, ratings: Tensor, n_rows: int) -> Tensor:
        """Hidden codes of ``n_rows`` items from their (row, user, rating) entries."""
        contrib = self.encoder(users) * ratings[:, None]
        acc = torch.zeros(n_rows, contrib.shape[1], dtype=contrib.dtype, device=contrib.device)
        acc.index_add_(0, rows, contrib)
        return torch.sigmoid(acc + self.encoder_bias)

    def decode_pairs(self, h: Tensor, users: Tensor) -> Tensor:
        """Reconstruction at user ``users[k]`` of the item whose code is ``h[k]``."""
        return (h * self.decoder(users)).sum(-1) + self.decoder_bias(users).squeeze(-1)


class AutoRec(TorchRecommender):
    """I-AutoRec, hidden 500 (sigmoid), identity output, masked MSE, Adam."""

    name = "autorec"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"hidden": IntRange(64, 1000, log=True), "lr": FloatRange(5e-5, 3e-3, log=True), "weight_decay": FloatRange(1e-5, 1e-2, log=True)}
    folds_in = True
    Config: ClassVar[type[ModelConfig]] = AutoRecConfig
    embedding_paths = ("encoder", "decoder")

    def build_module(self) -> nn.Module:
        return AutoRecModule(self.n_users_, self.config.hidden, self.global_mean_)

    # ---- data -----------------------------------------------------------------------
    def _prepare_training(self, train: Dataset) -> None:
        self._set_input(train)

    def _set_input(self, train: Dataset) -> None:
        # Item-major CSR of the train ratings: each item's raters and ratings.
        csc = train.to_csr().tocsc()
        self.input_indptr_ = np.asarray(csc.indptr, dtype=np.int64)
        self.input_users_ = np.asarray(csc.indices, dtype=np.int64)
        self.input_ratings_ = np.asarray(csc.data, dtype=np.float32)
        self._cache_input()

    def _cache_input(self) -> None:
        dev = self.device
        self._indptr_t = torch.from_numpy(self.input_indptr_).to(dev)
        self._users_t = torch.from_numpy(self.input_users_).to(dev)
        self._ratings_t = torch.from_numpy(self.input_ratings_).to(dev)
        self._codes: Tensor | None = None

    def train_tensors(self, train: Dataset) -> dict[str, Tensor]:
        counts = np.diff(self.input_indptr_)
        return {"item": torch.from_numpy(np.flatnonzero(counts > 0).astype(np.int64))}

    def valid_tensors(self, valid: Dataset) -> Any:
        users = torch.from_numpy(valid.users.astype(np.int64))
        items = torch.from_numpy(valid.items.astype(np.int64))
        ratings = torch.from_numpy(valid.ratings.copy())

        def valid_loss(module: nn.Module) -> float:
            dev = self._indptr_t.device
            codes = self._all_codes(module)
            pred = module.decode_pairs(codes[items.to(dev)], users.to(dev))
            return float(((pred - ratings.to(dev)) ** 2).mean())

        return valid_loss

    def _gather(self, items: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(row in batch, user, rating) of every train rating of ``items``, vectorised."""
        start = self._indptr_t[items]
        counts = self._indptr_t[items + 1] - start
        rows = torch.repeat_interleave(torch.arange(items.shape[0], device=items.device), counts)
        seg_start = torch.cumsum(counts, 0) - counts
        pos = torch.arange(rows.shape[0], device=items.device) - seg_start[rows] + start[rows]
        return rows, self._users_t[pos], self._ratings_t[pos]

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        items = batch["item"]
        rows, users, ratings = self._gather(items)
        h = module.encode(rows, users, ratings, items.shape[0])
        pred = module.decode_pairs(h[rows], users)
        # Masked loss: only the observed entries of each item's vector.
        return ((pred - ratings) ** 2).mean(), rows.shape[0]

    def _all_codes(self, module: nn.Module) -> Tensor:
        items = torch.arange(self.n_items_, device=self._indptr_t.device)
        out = []
        for s in range(0, self.n_items_, 1024):
            it = items[s : s + 1024]
            rows, users, ratings = self._gather(it)
            out.append(module.encode(rows, users, ratings, it.shape[0]))
        return torch.cat(out)

    def _codes_cached(self) -> Tensor:
        # Item codes only change when the weights do; fit/finetune/load reset the cache.
        if self._codes is None:
            with torch.no_grad():
                self._codes = self._all_codes(self._module())
        return self._codes

    # ---- inference ------------------------------------------------------------------
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        super()._fit(train, valid)
        # Predictions use every train rating as input, also the ones held out for
        # early stopping.
        self._set_input(train)

    def finetune(self, train: Dataset, valid: Dataset | None = None, epochs: int | None = None, **kw: Any) -> Any:
        history = super().finetune(train, valid, epochs, **kw)
        # As after `_fit`: training ran on the fit part only, predictions read every
        # train rating (without this, the held-out tenth went missing from the input).
        self._set_input(train)
        return history

    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:
        return self._module().decode_pairs(self._codes_cached()[items], users)

    def _score_module(self, users: Tensor) -> Tensor:
        module = self._module()
        codes = self._codes_cached()
        # decoder(u) . h_i for every item: the decoder is user-indexed, so this is a
        # lookup followed by one matmul with the item codes.
        return module.decoder(users) @ codes.T + module.decoder_bias(users)

    # ---- fold-in and similarity ------------------------------------------------------------
    def _codes_np(self) -> np.ndarray:
        return self._codes_cached().float().cpu().numpy()

    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
        codes = self._codes_np()
        reg = self.config.fold_in_reg
        D, c = ridge_user_factors(histories, lambda idx: codes[idx], None, self.global_mean_, reg, reg)
        return D, c

    def _score_folded(self, folded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        D, c = folded
        return D @ self._codes_np().T.astype(np.float64) + (self.global_mean_ + c)[:, None]

    def _predict_folded(self, folded: tuple[np.ndarray, np.ndarray], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        D, c = folded
        return np.einsum("nk,nk->n", D[rows], self._codes_np()[items].astype(np.float64)) + self.global_mean_ + c[rows]

    def _item_vectors(self) -> np.ndarray | None:
        return self._codes_np()

    def _state(self) -> dict[str, np.ndarray]:
        state = super()._state()
        state["_input.indptr"] = self.input_indptr_
        state["_input.users"] = self.input_users_
        state["_input.ratings"] = self.input_ratings_
        return state

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.input_indptr_ = arrays.pop("_input.indptr").astype(np.int64)
        self.input_users_ = arrays.pop("_input.users").astype(np.int64)
        self.input_ratings_ = arrays.pop("_input.ratings").astype(np.float32)
        super()._load_state(arrays, tables)
        self._cache_input()
