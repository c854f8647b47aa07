"""`NCF` ("ncf"): the deep collaborative-filtering network of paper 002, exactly.

Section 4 of the paper: 128-d user and movie embeddings (``n_factors``), concatenated; four dense
layers 512 -> 256 -> 128 -> 64, each followed by batch normalisation, ReLU and dropout
(0.3, 0.2, 0.2, 0.1); one output neuron with a sigmoid scaled to the rating range;
Xavier initialisation; MSE; Adam (lr 1e-3) with ReduceLROnPlateau (x0.5 after two
epochs without improvement of the validation loss). Section 5: 10 epochs, batch 64
(`NCF.paper_preset()` / ``preset="paper"``).

Our default differs only in training: early stopping on a validation part
(``valid_fraction`` of train, seeded, when ``fit`` gets no ``valid``) with the best
weights restored, and batch 256 (the same network; faster on CPU).

Section 6 ("optional features") adds an attention mechanism whose two weights (user
preferences vs movie characteristics) sum to 1, and a recommendation strength in
[0, 1]. The paper does not say where the attention sits in the network nor that its
RMSE used it, so it is off by default (``attention=False``: the section-4 network).
With ``attention=True`` a small attention layer reads both embeddings and weighs
them (softmax over two) before the MLP, so the weights shown are the ones that shaped
the prediction. With it off, `explain` reports gradient x input attribution of the
prediction to the two embeddings, normalised to sum to 1 (``method`` says which).
The strength is the sigmoid output, i.e. the predicted rating rescaled to [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import AliasChoices, Field, model_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.models.base import ModelConfig
from cinerec.models.explain import Explanation, ScoreShares
from cinerec.models.search import Choice, FloatRange, IntRange, Param
from cinerec.models.torch.base import TorchModelConfig, TorchRecommender, _triples

#: Training settings of paper 002, section 5 (applied by ``preset="paper"``).
PAPER_PRESET: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "schedule": "plateau",
    "plateau_factor": 0.5,
    "plateau_patience": 2,
    "early_stopping_patience": None,
}


class NCFConfig(TorchModelConfig):
    #: Width of the user and movie embeddings (the paper's "embedding dimension";
    #: ``embedding_dim`` is accepted as an alias).
    n_factors: int = Field(128, ge=1, validation_alias=AliasChoices("n_factors", "embedding_dim"))
    layers: tuple[int, ...] = (512, 256, 128, 64)
    dropout: tuple[float, ...] = (0.3, 0.2, 0.2, 0.1)
    batch_norm: bool = True
    attention: bool = False
    attention_dim: int = Field(64, ge=1)
    #: "paper" forces the paper's training settings (`PAPER_PRESET`) over any others.
    preset: Literal["default", "paper"] = "default"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    schedule: Literal["none", "plateau", "step"] = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    early_stopping_patience: int | None = 3

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "paper":
            data = dict(data) | PAPER_PRESET
        return data

    @model_validator(mode="after")
    def _check_layers(self) -> NCFConfig:
        if len(self.layers) != len(self.dropout):
            raise ValueError(
                f"layers {self.layers} and dropout {self.dropout} must have the same length"
            )
        if any(not 0 <= p < 1 for p in self.dropout):
            raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout}")
        return self


class NCFModule(nn.Module):
    """Embeddings -> [attention] -> MLP (Linear, BN, ReLU, Dropout)* -> sigmoid."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        layers: tuple[int, ...],
        dropout: tuple[float, ...],
        batch_norm: bool,
        attention: bool,
        attention_dim: int,
        rating_scale: tuple[float, float],
    ):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        self.attention = (
            nn.Sequential(nn.Linear(2 * dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 2))
            if attention
            else None
        )
        blocks: list[nn.Module] = []
        width = 2 * dim
        for size, p in zip(layers, dropout, strict=True):
            blocks.append(nn.Linear(width, size))
            if batch_norm:
                blocks.append(nn.BatchNorm1d(size))
            blocks += [nn.ReLU(), nn.Dropout(p)]
            width = size
        self.mlp = nn.Sequential(*blocks)
        self.out = nn.Linear(width, 1)
        self.register_buffer("rating_min", torch.tensor(float(rating_scale[0])))
        self.register_buffer("rating_span", torch.tensor(float(rating_scale[1] - rating_scale[0])))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def parts(self, u: Tensor, m: Tensor) -> tuple[Tensor, Tensor | None]:
        """Sigmoid output (the strength, in [0, 1]) and attention weights (B, 2) or None,
        from user and movie embedding vectors."""
        weights = None
        if self.attention is not None:
            weights = torch.softmax(self.attention(torch.cat([u, m], -1)), dim=-1)
            # x2 keeps the input scale when both weights are 1/2.
            u = 2 * weights[:, :1] * u
            m = 2 * weights[:, 1:] * m
        h = self.mlp(torch.cat([u, m], -1))
        return torch.sigmoid(self.out(h)).squeeze(-1), weights

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        strength, _ = self.parts(self.user_emb(users), self.item_emb(items))
        return self.rating_min + self.rating_span * strength

    @torch.no_grad()
    def folded_layers(self) -> list[tuple[Tensor, Tensor]]:
        """Inference form of the MLP: each Linear with the eval-mode BatchNorm after it
        folded in (``W' = s W``, ``b' = s (b - mean) + beta``, ``s = gamma / sqrt(var +
        eps)``); ReLU follows every layer and dropout is the identity in eval mode."""
        layers: list[tuple[Tensor, Tensor]] = []
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                layers.append((m.weight.detach(), m.bias.detach()))
            elif isinstance(m, nn.BatchNorm1d):
                w, b = layers[-1]
                scale = m.weight / torch.sqrt(m.running_var + m.eps)
                layers[-1] = (w * scale[:, None], (b - m.running_mean) * scale + m.bias)
        return layers

    def inference_key(self) -> list[tuple[Tensor, int]]:
        """Every tensor `inference_parts` reads with its in-place version: optimizer steps
        and BatchNorm's running statistics bump ``_version``, compression swaps modules.
        Compare keys with `same_inference_key` (tensor identity, not ``id``, so a freed
        tensor's address reused by a new one cannot match)."""
        tensors = [*self.mlp.parameters(), *self.mlp.buffers(), *self.item_emb.parameters(), *self.item_emb.buffers()]
        return [(t, t._version) for t in tensors]

    @staticmethod
    def same_inference_key(a: list[tuple[Tensor, int]], b: list[tuple[Tensor, int]]) -> bool:
        return len(a) == len(b) and all(ta is tb and va == vb for (ta, va), (tb, vb) in zip(a, b, strict=True))

    @torch.no_grad()
    def inference_parts(self) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """(`folded_layers`, the item half ``W'_m m`` of the first layer for every item)."""
        layers = self.folded_layers()
        dim = self.user_emb.embedding_dim
        items = torch.arange(self.item_emb.num_embeddings, device=layers[0][0].device)
        return layers, self.item_emb(items) @ layers[0][0][:, dim:].T

    @torch.no_grad()
    def score_grid(
        self,
        users: Tensor,
        max_cells: int = 1 << 23,
        parts: tuple[list[tuple[Tensor, Tensor]], Tensor] | None = None,
    ) -> Tensor:
        """Ratings of ``users`` x every item, in eval mode, without attention.

        The first Linear layer of ``[u; m]`` splits into ``W_u u + W_m m + b``: the item
        half is computed once for the whole catalogue instead of once per pair, which
        removes about 45% of the multiply-adds of paper 002's network. BatchNorm is
        folded into the Linear layers and ReLU runs in place (together -30% time for
        one user on CPU). Pass ``parts`` (from `inference_parts`) to reuse them across
        calls.
        """
        layers, item_part = parts if parts is not None else self.inference_parts()
        (w1, b1), rest = layers[0], layers[1:]
        dim = self.user_emb.embedding_dim
        n_items, width = item_part.shape
        user_part = self.user_emb(users) @ w1[:, :dim].T + b1
        out = torch.empty(users.shape[0], n_items, device=users.device)
        step = max(1, max_cells // (n_items * width))
        for s in range(0, users.shape[0], step):
            h = (user_part[s : s + step, None, :] + item_part[None, :, :]).reshape(-1, width)
            h.relu_()
            for w, b in rest:
                h = torch.addmm(b, h, w.T).relu_()
            strength = torch.sigmoid(self.out(h)).view(-1, n_items)
            out[s : s + step] = self.rating_min + self.rating_span * strength
        return out


class NCF(TorchRecommender):
    """Paper 002's deep CF network (see the module docstring for fidelity notes)."""

    name = "ncf"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(16, 256, log=True), "lr": FloatRange(1e-4, 1e-2, log=True), "weight_decay": FloatRange(1e-7, 1e-3, log=True), "batch_size": Choice((128, 256, 512, 1024))}
    scores_pairs = True
    Config: ClassVar[type[ModelConfig]] = NCFConfig
    embedding_paths = ("user_emb", "item_emb")

    @staticmethod
    def paper_preset() -> dict[str, Any]:
        """Config overrides reproducing paper 002's training (10 epochs, batch 64...)."""
        return {"preset": "paper", **PAPER_PRESET}

    def build_module(self) -> nn.Module:
        c = self.config
        return NCFModule(
            self.n_users_,
            self.n_items_,
            c.n_factors,
            c.layers,
            c.dropout,
            c.batch_norm,
            c.attention,
            c.attention_dim,
            self.rating_scale_,
        )

    def train_tensors(self, train: Dataset) -> dict[str, Tensor]:
        return _triples(train)

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        pred = module(batch["user"], batch["item"])
        return ((pred.float() - batch["rating"]) ** 2).mean()

    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:
        return self._module()(users, items)

    def _score_module(self, users: Tensor) -> Tensor:
        module = self._module()
        if module.attention is None and not module.training:
            return module.score_grid(users, parts=self._inference_parts(module))
        n_items = self.n_items_
        items = torch.arange(n_items, device=users.device)
        uu = users.repeat_interleave(n_items)
        ii = items.repeat(users.shape[0])
        out = torch.empty(uu.shape[0], device=users.device)
        # The MLP is per pair: chunk the (user, item) grid to bound memory.
        chunk = max(1, self.options_.eval_batch_size * 8)
        for s in range(0, uu.shape[0], chunk):
            out[s : s + chunk] = module(uu[s : s + chunk], ii[s : s + chunk]).float()
        out = out.view(users.shape[0], n_items)
        return out

    def _inference_parts(self, module: NCFModule) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        # Folding BatchNorm and the item half of the first layer once saves ~25% of one
        # user's full-catalogue scoring; recomputed whenever a tensor they read changes
        # (fit, finetune, compression, load).
        key = module.inference_key()
        cached = getattr(self, "_inference_cache", None)
        if cached is None or not module.same_inference_key(cached[0], key):
            cached = (key, module.inference_parts())
            self._inference_cache = cached
        return cached[1]

    def explain(self, user: int, item: int) -> Explanation | None:
        """User-preference vs movie-characteristics shares (sum 1) and strength in [0, 1]."""
        self._check_fitted()
        if not (self._warm_users(np.array([user]))[0] and self._warm_items(np.array([item]))[0]):
            return None
        module = self._module()
        module.eval()
        dev = self.device
        u_idx = torch.tensor([int(user)], device=dev)
        i_idx = torch.tensor([int(item)], device=dev)
        with torch.enable_grad():
            u = module.user_emb(u_idx).detach().requires_grad_(True)
            m = module.item_emb(i_idx).detach().requires_grad_(True)
            strength, weights = module.parts(u, m)
            if weights is None:
                gu, gm = torch.autograd.grad(strength.sum(), (u, m))
                share = torch.stack([(gu * u).sum().abs(), (gm * m).sum().abs()]).detach()
                total = share.sum()
                w = (share / total) if total > 0 else torch.full((2,), 0.5, device=dev)
                method = "gradient_x_input"
            else:
                w = weights[0].detach()
                method = "attention"
        return ScoreShares(float(w[0]), float(w[1]), float(strength.detach()[0]), method)

    @torch.no_grad()
    def _item_vectors(self) -> np.ndarray | None:
        module = self._module()
        idx = torch.arange(self.n_items_, device=self.device)
        return module.item_emb(idx).float().cpu().numpy()
