"""`Multimodal` ("multimodal"): paper 000's fused item tower with cross-modal attention.

Paper 000 (3.1, 5.2) fuses a BERT text embedding and a ViT poster embedding of each
movie with cross-modal attention and reports the modality weights (text 0.67 /
visual 0.33) and an ablation (text only 0.8456, visual only 0.9123, fused 0.8201
RMSE). This model builds that item tower from what we have:

- ``text``: the sentence embedding (all-MiniLM-L6-v2 from the ``content`` extra, or
  any sentence-transformers folder, ``encoder=``) of the title, TMDB overview and
  tags, encoded once and cached (`cinerec.features.text.SentenceEncoder`);
- ``meta``: the encoded item features (`cinerec.features.items`: genres, year, tags,
  TMDB / IMDb columns where joined);
- ``visual``: posters from a folder of ``<movieId>.jpg`` (``posters=``), through a
  small CNN trained end to end as paper 001 describes, or, with ``vision_encoder=`` a
  local folder holding a pretrained vision model (ViT as in paper 000, CLIP, ResNet
  ...; `cinerec.features.images.ImageEncoder`), that model's frozen poster features
  (encoded once, cached) through a trained projection. MovieLens ships no posters;
  movies without one have the modality masked, not a black image.

Each modality becomes one d-dimensional token; the tokens attend to each other
(multi-head self-attention across modalities, the "cross-modal" step, with a
residual and layer norm), then the user's own query pools them (softmax over
modalities: the weights reported by `modality_weights`). The pooled vector is the
content part of the movie; with the user's factors it gives the rating

    r = mu + b_u + b_i + c(v) + <p_u, v + q_i>

where ``b_i`` and ``q_i`` are the movie's collaborative bias and factors (zeroed for a
movie without training ratings and for ``id_dropout`` of training rows, so cold
movies are predicted from content alone) and ``c(v)`` a content bias. Explanations
split the score into exactly these parts, the taste match per modality.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.features.images import ImageEncoder, load_posters
from cinerec.features.text import SentenceEncoder
from cinerec.models.content.base import ContentConfig, ContentRecommender, id_keep
from cinerec.models.explain import Explanation, ScoreBreakdown
from cinerec.models.search import Choice, FloatRange, Param

MODALITIES = ("text", "meta", "visual")


class MultimodalConfig(ContentConfig):
    modalities: tuple[str, ...] = ("text", "meta")
    item_features: tuple[str, ...] = ("genres", "year", "tags")
    #: Item-table columns whose text is embedded (those present are joined).
    text_fields: tuple[str, ...] = ("title", "tmdb_overview", "tags")
    #: A sentence-transformers folder; None = the content extra's all-MiniLM-L6-v2.
    encoder: str | None = None
    #: A folder of ``<movieId>.jpg`` posters (needed by the "visual" modality).
    posters: str | None = None
    poster_size: int = Field(32, ge=8, le=128)
    #: A local folder with a pretrained vision model (config.json + model.safetensors,
    #: saved by transformers' save_pretrained): its frozen features replace the CNN.
    vision_encoder: str | None = None
    #: Width of every token and of the user / movie factors (256 and ``reg`` 0.1 measured
    #: best on ml-latest-small random 90/10 among 64/128/256 x 0.02..0.2).
    factors: int = Field(256, ge=1)
    heads: int = Field(4, ge=1)
    #: L2 weight on the batch's user/movie factors and biases (per rating).
    reg: float = Field(0.1, ge=0)
    epochs: int = 40
    batch_size: int = 1024
    lr: float = 3e-3
    early_stopping_patience: int | None = 3

    @field_validator("modalities")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [m for m in v if m not in MODALITIES]
        if bad or not v:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {v}")
        return tuple(m for m in MODALITIES if m in v)

    @model_validator(mode="after")
    def _heads_divide_factors(self):
        if self.factors % self.heads:
            raise ValueError(f"factors ({self.factors}) must be a multiple of heads ({self.heads})")
        if self.vision_encoder is not None and "visual" not in self.modalities:
            raise ValueError("vision_encoder encodes posters: add 'visual' to modalities")
        return self


class PosterCNN(nn.Module):
    """Two conv blocks and a projection: (B, 3, S, S) uint8 -> (B, d)."""

    def __init__(self, d: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, d),
        )  # fmt: skip

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images.float() / 255.0 - 0.5)


class MultimodalModule(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, item_x: np.ndarray, text_x: np.ndarray, posters: np.ndarray,
        has_poster: np.ndarray, cfg: MultimodalConfig, global_mean: float,
    ):  # fmt: skip
        super().__init__()
        d = cfg.factors
        self.modalities = cfg.modalities
        self.register_buffer("item_x", torch.as_tensor(item_x, dtype=torch.float32))
        self.register_buffer("text_x", torch.as_tensor(text_x, dtype=torch.float32))
        # uint8 images (B, 3, S, S) for the CNN, or float features (B, f) of a pretrained encoder
        self.register_buffer("posters", torch.as_tensor(posters))
        self.register_buffer("has_poster", torch.as_tensor(has_poster, dtype=torch.bool))
        self.register_buffer("item_warm", torch.ones(n_items, dtype=torch.bool))
        self.register_buffer("mu", torch.tensor(float(global_mean)))
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items, d)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for e in (self.user_emb, self.item_emb):
            nn.init.normal_(e.weight, std=0.05)
        for e in (self.user_bias, self.item_bias):
            nn.init.zeros_(e.weight)
        self.encoders = nn.ModuleDict()
        if "text" in self.modalities:
            self.encoders["text"] = nn.Linear(text_x.shape[1], d)
        if "meta" in self.modalities:
            self.encoders["meta"] = nn.Sequential(nn.Linear(item_x.shape[1], 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        if "visual" in self.modalities:
            self.encoders["visual"] = PosterCNN(d) if posters.ndim == 4 else nn.Linear(posters.shape[1], d)
        k = len(self.modalities)
        self.type_emb = nn.Parameter(torch.zeros(k, d))
        self.cross = nn.MultiheadAttention(d, cfg.heads, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.query = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.content_bias = nn.Linear(d, 1)
        self.id_dropout = cfg.id_dropout

    def tokens(self, items: Tensor | None, x: Tensor, text: Tensor, images: Tensor | None, has_image: Tensor) -> tuple[Tensor, Tensor]:
        """(B, K, d) modality tokens after cross-modal attention and the (B, K) mask of
        modalities present."""
        toks, present = [], []
        n = x.shape[0]
        for m in self.modalities:
            if m == "text":
                toks.append(self.encoders["text"](text))
                present.append(torch.ones(n, dtype=torch.bool, device=x.device))
            elif m == "meta":
                toks.append(self.encoders["meta"](x))
                present.append(torch.ones(n, dtype=torch.bool, device=x.device))
            else:
                feats = torch.zeros(n, self.type_emb.shape[1], device=x.device)
                if images is not None and bool(has_image.any()):
                    feats[has_image] = self.encoders["visual"](images[has_image])
                toks.append(feats)
                present.append(has_image)
        t = torch.stack(toks, 1) + self.type_emb[None]
        mask = torch.stack(present, 1)
        mask = mask | ~mask.any(1, keepdim=True)  # nothing present (no poster, visual only): zeros
        attended, _ = self.cross(t, t, t, key_padding_mask=~mask, need_weights=False)
        return self.norm(t + attended), mask

    def pool_weights(self, p: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """(..., K) softmax over the present modalities of the user's query · keys."""
        logits = (self.query(p)[..., None, :] * keys).sum(-1) / keys.shape[-1] ** 0.5
        return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)

    def _item_content(self, items: Tensor) -> tuple[Tensor, Tensor]:
        imgs = self.posters[items] if "visual" in self.modalities else None
        return self.tokens(items, self.item_x[items], self.text_x[items], imgs, self.has_poster[items])

    def rate(self, users: Tensor, items: Tensor | None, t: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Ratings of (users[j], movie j with tokens t[j]) and the modality weights."""
        p = self.user_emb(users)
        w = self.pool_weights(p, self.key(t), mask)
        v = (w[..., None] * t).sum(-2)
        r = self.mu + self.user_bias(users).squeeze(-1) + self.content_bias(v).squeeze(-1) + (p * v).sum(-1)
        if items is not None:
            kf = id_keep(self.item_warm, items, self.training, self.id_dropout).squeeze(-1)
            r = r + kf * (self.item_bias(items).squeeze(-1) + (p * self.item_emb(items)).sum(-1))
        return r, w

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        t, mask = self._item_content(items)
        return self.rate(users, items, t, mask)[0]

    def forward_features(self, users: Tensor, x: Tensor, text: Tensor, images: Tensor | None, has_image: Tensor) -> Tensor:
        t, mask = self.tokens(None, x, text, images, has_image)
        return self.rate(users, None, t, mask)[0]

    @torch.no_grad()
    def catalogue_tokens(self, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        n = self.item_x.shape[0]
        parts = [self._item_content(torch.arange(s, min(s + chunk, n), device=self.mu.device)) for s in range(0, n, chunk)]
        return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])

    @torch.no_grad()
    def score_grid(self, users: Tensor, parts: tuple[Tensor, Tensor], max_cells: int = 1 << 22) -> Tensor:
        t, mask = parts  # (I, K, d), (I, K)
        keys = self.key(t)
        cb = self.content_bias.weight[0]  # the content bias is linear: c(sum w t) = sum w c(t) + b
        ct = t @ cb  # (I, K)
        every = torch.arange(self.item_warm.shape[0], device=t.device)
        q_i = (
            self.item_emb(every) * self.item_warm[:, None].float()
        )  # forward(): compressed tables work too
        b_i = self.item_bias.weight.squeeze(-1) * self.item_warm.float()
        n_items, k, d = t.shape
        out = torch.empty(users.shape[0], n_items, device=t.device)
        step = max(1, max_cells // max(n_items * k, 1))
        for s in range(0, users.shape[0], step):
            u = users[s : s + step]
            p = self.user_emb(u)  # (U, d)
            logits = torch.einsum("ud,ikd->uik", self.query(p), keys) / d**0.5
            w = torch.softmax(logits.masked_fill(~mask[None], float("-inf")), -1)
            match = torch.einsum("ud,ikd->uik", p, t) + ct[None]
            out[s : s + step] = (
                self.mu + self.user_bias(u) + self.content_bias.bias + (w * match).sum(-1) + b_i[None] + p @ q_i.T
            )
        return out


class Multimodal(ContentRecommender):
    """Paper 000's multi-modal item tower with cross-modal attention (see module doc)."""

    name = "multimodal"
    Config: ClassVar[type[MultimodalConfig]] = MultimodalConfig
    scores_pairs = True
    embedding_paths = ("user_emb", "item_emb")
    search_space: ClassVar[dict[str, Param]] = {
        "lr": FloatRange(5e-4, 1e-2, log=True), "reg": FloatRange(1e-3, 0.1, log=True), "factors": Choice((32, 64, 128, 256)),
    }  # fmt: skip

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.text_dim_ = 0
        self.poster_shape_ = 0
        #: Width of the pretrained vision features (0: posters go through the CNN).
        self.image_dim_ = 0
        self.encoding_report_: dict[str, Any] = {}
        self.visual_report_: dict[str, Any] = {}

    def _prepare_content(self, train: Dataset, items: pl.DataFrame) -> None:
        c = self.config
        self._text = np.zeros((items.height, 0), dtype=np.float32)
        if "text" in c.modalities:
            texts = item_texts(items, c.text_fields)
            self._text, self.encoding_report_ = SentenceEncoder(c.encoder).encode_cached(
                texts, progress=self.options_.progress
            )
        self._posters = np.zeros((items.height, 3, 1, 1), dtype=np.uint8)
        self._has_poster = np.zeros(items.height, dtype=bool)
        if "visual" in c.modalities:
            if c.posters is None:
                raise ConfigError("the 'visual' modality needs posters=FOLDER (files <movieId>.jpg)")
            ids = items.get_column("movieId").to_numpy()
            if c.vision_encoder is not None:
                self._posters, self._has_poster, self.visual_report_ = ImageEncoder(
                    c.vision_encoder).encode_posters_cached(c.posters, ids, progress=self.options_.progress)
            else:
                self._posters, self._has_poster = load_posters(c.posters, ids, c.poster_size)
        self.text_dim_ = int(self._text.shape[1])
        pretrained = self._posters.ndim == 2
        self.image_dim_ = int(self._posters.shape[1]) if pretrained else 0
        self.poster_shape_ = 0 if pretrained else int(self._posters.shape[-1])
        self._item_warm = train.item_counts > 0

    def build_module(self) -> nn.Module:
        n = self.n_items_
        text = getattr(self, "_text", None)
        if text is None:
            text = np.zeros((n, self.text_dim_), dtype=np.float32)
        posters = getattr(self, "_posters", None)
        if posters is None and self.image_dim_:
            posters = np.zeros((n, self.image_dim_), dtype=np.float32)
        elif posters is None:
            posters = np.zeros((n, 3, self.poster_shape_, self.poster_shape_), dtype=np.uint8)
        has = getattr(self, "_has_poster", None)
        if has is None:
            has = np.zeros(n, dtype=bool)
        m = MultimodalModule(self.n_users_, n, self._item_x_or_zeros(), text, posters, has, self.config, self.global_mean_)
        warm = getattr(self, "_item_warm", None)
        if warm is not None:
            m.item_warm.copy_(torch.from_numpy(warm))
        self._text = self._posters = self._has_poster = self._item_warm = None
        return m

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        u, i = batch["user"], batch["item"]
        pred = module(u, i)
        loss = ((pred.float() - batch["rating"]) ** 2).mean()
        if module.training and self.config.reg:
            reg = (module.user_emb(u) ** 2).sum(-1) + (module.item_emb(i) ** 2).sum(-1)
            reg = reg + module.user_bias(u).squeeze(-1) ** 2 + module.item_bias(i).squeeze(-1) ** 2
            loss = loss + self.config.reg * reg.mean()
        return loss

    def _score_module(self, users: Tensor) -> Tensor:
        module = self._module()
        return module.score_grid(users, self._catalogue_parts(module))

    def _catalogue_parts(self, module: MultimodalModule) -> tuple[Tensor, Tensor]:
        # The item tower over the whole catalogue, recomputed when any weight changes.
        key = [(t, t._version) for t in module.parameters()]
        cached = getattr(self, "_parts_cache", None)
        if cached is None or len(cached[0]) != len(key) or any(a is not b or va != vb for (a, va), (b, vb) in zip(cached[0], key, strict=True)):
            cached = (key, module.catalogue_tokens())
            self._parts_cache = cached
        return cached[1]

    # ---- reporting ------------------------------------------------------------------------
    @torch.no_grad()
    def modality_weights(self, users: np.ndarray, items: np.ndarray) -> dict[str, float]:
        """Mean attention weight of each modality over (user, movie) pairs (warm users)."""
        self._check_fitted()
        module = self._module()
        module.eval()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        ok = self._warm_users(users) & self._warm_items(items)
        total = torch.zeros(len(module.modalities))
        n = 0
        for s in range(0, int(ok.sum()), 8192):
            u = torch.as_tensor(users[ok][s : s + 8192], device=self.device)
            i = torch.as_tensor(items[ok][s : s + 8192], device=self.device)
            t, mask = module._item_content(i)
            _, w = module.rate(u, i, t, mask)
            total += w.sum(0).cpu()
            n += u.shape[0]
        return {m: float(total[j] / max(n, 1)) for j, m in enumerate(module.modalities)}

    @torch.no_grad()
    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        module = self._module()
        module.eval()
        i = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device)
        u = torch.full_like(i, int(user))
        t, mask = module._item_content(i)
        p = module.user_emb(u)
        w = module.pool_weights(p, module.key(t), mask)
        keep = module.item_warm[i].float()
        mu = float(module.mu)
        bu = float(module.user_bias(u[:1]))
        cb = module.content_bias((w[..., None] * t).sum(-2)).squeeze(-1)
        match = (p[:, None, :] * t).sum(-1) * w  # (B, K)
        bi = module.item_bias(i).squeeze(-1) * keep
        qi = (p * module.item_emb(i)).sum(-1) * keep
        out: list[Explanation | None] = []
        for r in range(i.shape[0]):
            parts = [("global mean", mu), ("your bias", bu), ("movie bias", float(bi[r] + cb[r]))]
            parts += [
                (f"taste match via {m} (attention {float(w[r, j]):.2f})", float(match[r, j]))
                for j, m in enumerate(module.modalities) if bool(mask[r, j])
            ]  # fmt: skip
            parts.append(("taste match via ratings", float(qi[r])))
            out.append(ScoreBreakdown(tuple(parts), sum(v for _, v in parts)))
        return out

    def explain(self, user: int, item: int) -> Explanation | None:
        self._check_fitted()
        if not (self._warm_users(np.array([user]))[0] and self._warm_items(np.array([item]))[0]):
            return None
        return self._explain_many(int(user), np.array([item]))[0]

    @torch.no_grad()
    def _item_vectors(self) -> np.ndarray | None:
        t, mask = self._catalogue_parts(self._module())
        m = mask.float()[..., None]
        return ((t * m).sum(1) / m.sum(1).clamp(min=1)).cpu().numpy()

    # ---- new movies / artifacts -------------------------------------------------------------
    def _new_item_inputs(self, items: pl.DataFrame) -> dict[str, Any]:
        c = self.config
        dev = self.device
        text = np.zeros((items.height, self.text_dim_), dtype=np.float32)
        if "text" in c.modalities:
            text = SentenceEncoder(c.encoder).encode(item_texts(items, c.text_fields))
        images, has = None, np.zeros(items.height, dtype=bool)
        if "visual" in c.modalities and c.posters is not None and "movieId" in items.columns:
            ids = items.get_column("movieId").to_numpy()
            if self.image_dim_:
                imgs, has = ImageEncoder(c.vision_encoder).encode_posters(c.posters, ids)
            else:
                imgs, has = load_posters(c.posters, ids, c.poster_size)
            images = torch.as_tensor(imgs, device=dev)
        return {"text": torch.as_tensor(text, device=dev), "images": images, "has_image": torch.as_tensor(has, device=dev)}

    def artifact_extra(self) -> dict[str, Any]:
        return super().artifact_extra() | {"text_dim": self.text_dim_, "poster_size": self.poster_shape_,
                                           "image_dim": self.image_dim_}

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        super().apply_artifact_extra(extra)
        self.text_dim_ = int(extra.get("text_dim") or 0)
        self.poster_shape_ = int(extra.get("poster_size") or 0)
        self.image_dim_ = int(extra.get("image_dim") or 0)


def item_texts(items: pl.DataFrame, fields: tuple[str, ...]) -> list[str]:
    """One text per movie: the present ``fields`` joined ("Title. Overview. tags: a, b")."""
    cols = []
    for f in fields:
        if f not in items.columns:
            continue
        s = items.get_column(f)
        if isinstance(s.dtype, pl.List):
            s = s.list.join(", ").fill_null("")
            s = pl.Series([f"{f}: {v}" if v else "" for v in s.to_list()])
        cols.append([v or "" for v in s.cast(pl.String).to_list()])
    if not cols:
        raise ConfigError(f"none of the text fields {fields} is in the item table")
    return [". ".join(p for p in parts if p) for parts in zip(*cols, strict=True)]
