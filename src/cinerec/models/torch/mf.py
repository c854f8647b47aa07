"""`TorchMF` ("mf-torch"): biased matrix factorisation trained by the torch Trainer.

r_hat(u, i) = mu + b_u + b_i + p_u . q_i, MSE on observed ratings plus an L2 penalty on
the rows a batch touches (the classic SGD regularisation, so rows that are not in a
batch are not shrunk as Adam's dense ``weight_decay`` would do), Adam. The penalty is
``reg`` per rating, so a new user is folded in by ridge regression with ``reg * n``
(`cinerec.models.foldin`), as for `svd`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.models.base import ModelConfig
from cinerec.models.explain import Explanation, ScoreBreakdown
from cinerec.models.foldin import ridge_user_factors
from cinerec.models.query import History
from cinerec.models.retrieval import RetrievalSpace, factor_space
from cinerec.models.search import Choice, FloatRange, IntRange, Param
from cinerec.models.torch.base import TorchModelConfig, TorchRecommender, _triples, dot_all


class TorchMFConfig(TorchModelConfig):
    n_factors: int = Field(64, ge=1)
    #: L2 weight on the batch's user/item factors and biases (per rating).
    reg: float = Field(0.05, ge=0)
    init_std: float = Field(0.05, gt=0)
    epochs: int = 40
    batch_size: int = 1024
    lr: float = 3e-3
    early_stopping_patience: int | None = 3


class MFModule(nn.Module):
    """User/item factors and biases plus the global mean (a buffer)."""

    def __init__(self, n_users: int, n_items: int, factors: int, global_mean: float, init_std: float):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, factors)
        self.item_emb = nn.Embedding(n_items, factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        nn.init.normal_(self.user_emb.weight, 0.0, init_std)
        nn.init.normal_(self.item_emb.weight, 0.0, init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        p, q = self.user_emb(users), self.item_emb(items)
        bu, bi = self.user_bias(users).squeeze(-1), self.item_bias(items).squeeze(-1)
        return self.global_mean + bu + bi + (p * q).sum(-1)

    def score_all(self, users: Tensor) -> Tensor:
        n_items = self.item_bias.num_embeddings
        all_items = torch.arange(n_items, device=users.device)
        bi = self.item_bias(all_items).squeeze(-1)
        bu = self.user_bias(users)
        return self.global_mean + bu + bi[None, :] + dot_all(self.item_emb, self.user_emb(users))


class TorchMF(TorchRecommender):
    """Biased MF with Adam and per-batch L2 (target RMSE ~0.86 on ml-latest-small)."""

    name = "mf-torch"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(8, 256, log=True), "lr": FloatRange(1e-4, 3e-2, log=True), "reg": FloatRange(1e-4, 0.3, log=True), "batch_size": Choice((256, 512, 1024, 2048))}
    scores_pairs = True
    folds_in = True
    Config: ClassVar[type[ModelConfig]] = TorchMFConfig
    embedding_paths = ("user_emb", "item_emb")

    def build_module(self) -> nn.Module:
        c = self.config
        return MFModule(self.n_users_, self.n_items_, c.n_factors, self.global_mean_, c.init_std)

    def train_tensors(self, train: Dataset) -> dict[str, Tensor]:
        return _triples(train)

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        u, i, r = batch["user"], batch["item"], batch["rating"]
        p, q = module.user_emb(u), module.item_emb(i)
        bu, bi = module.user_bias(u).squeeze(-1), module.item_bias(i).squeeze(-1)
        pred = module.global_mean + bu + bi + (p * q).sum(-1)
        mse = ((pred - r) ** 2).mean()
        if not module.training or self.config.reg == 0:
            return mse
        penalty = (p.pow(2).sum(-1) + q.pow(2).sum(-1) + bu.pow(2) + bi.pow(2)).mean()
        return mse + self.config.reg * penalty

    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:
        return self._module()(users, items)

    def _score_module(self, users: Tensor) -> Tensor:
        return self._module().score_all(users)

    # ---- fold-in, explanations, similarity (numpy, no grad) ------------------------------
    @torch.no_grad()
    def _item_rows(self, items: np.ndarray) -> np.ndarray:
        idx = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device)
        return self._module().item_emb(idx).float().cpu().numpy()

    @torch.no_grad()
    def _item_bias(self) -> np.ndarray:
        return self._module().item_bias.weight.detach().float().cpu().numpy()[:, 0].astype(np.float64)

    @torch.no_grad()
    def _user_part(self, user: int) -> tuple[np.ndarray, float]:
        module = self._module()
        u = torch.tensor([int(user)], device=self.device)
        return module.user_emb(u)[0].float().cpu().numpy(), float(module.user_bias(u)[0, 0])

    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
        reg = self.config.reg
        U, b = ridge_user_factors(histories, self._item_rows, self._item_bias(), self.global_mean_, reg, reg)
        return U.astype(np.float32), b

    @torch.no_grad()
    def _score_folded(self, folded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        U, b = folded
        module = self._module()
        vecs = torch.as_tensor(U, device=self.device)
        s = dot_all(module.item_emb, vecs).float().cpu().numpy().astype(np.float64)
        return s + self._item_bias()[None, :] + (float(module.global_mean) + b)[:, None]

    def _predict_folded(self, folded: tuple[np.ndarray, np.ndarray], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        U, b = folded
        dot = np.einsum("nk,nk->n", U[rows].astype(np.float64), self._item_rows(items).astype(np.float64))
        return float(self._module().global_mean) + b[rows] + self._item_bias()[items] + dot

    @torch.no_grad()
    def _breakdown(self, u: np.ndarray, bu: float, items: np.ndarray) -> list[Explanation | None]:
        items = np.asarray(items, dtype=np.int64)
        taste = self._item_rows(items).astype(np.float64) @ u.astype(np.float64)
        idx = torch.as_tensor(items, device=self.device)
        bi = self._module().item_bias(idx).float().cpu().numpy()[:, 0]
        return list(ScoreBreakdown.biased_mf(float(self._module().global_mean), bu, bi, taste))

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        u, bu = self._user_part(user)
        return self._breakdown(u, bu, items)

    def _explain_folded(self, folded: tuple[np.ndarray, np.ndarray], row: int, items: np.ndarray) -> list[Explanation | None]:
        return self._breakdown(folded[0][row], float(folded[1][row]), items)

    def _item_vectors(self) -> np.ndarray | None:
        return self._item_rows(np.arange(self.n_items_))

    @torch.no_grad()
    def _user_rows(self, users: np.ndarray) -> np.ndarray:
        idx = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self.device)
        return self._module().user_emb(idx).float().cpu().numpy()

    def retrieval_space(self) -> RetrievalSpace | None:
        """``y_i = [q_i, b_i]``, ``x_u = [p_u, 1]`` (decoded when the tables are compressed)."""
        self._check_fitted()
        items = self._item_rows(np.arange(self.n_items_))
        return factor_space(self, items, self._item_bias(), self._user_rows, lambda folded: folded[0])
