"""`TorchRecommender`: the base of every torch model (MF, AutoRec, NCF).

A subclass says how to build its ``nn.Module`` (`build_module`), how to turn a train
`Dataset` into tensors or a batch source (`train_tensors`), what one batch's loss is
(`batch_loss`) and how to predict/score with the module. This class does the rest:
seeds, device (``FitOptions.device``), validation hold-out, running the one `Trainer`,
batched no-grad inference, and the module's ``state_dict`` as named arrays.

Compression protocol (``cinerec.compress`` plugs in through it; models never import it):

- `embedding_tables()` maps a dotted path inside ``self.module_`` to an embedding
  module; `replace_embedding(path, module)` swaps one in place. Models only ever call
  a table's ``forward(idx)`` (and ``dot_all(x)`` when present), never ``.weight[idx]``,
  so a quantized table works everywhere.
- ``self.compression`` (a JSON dict or None) is saved in the artifact; on load, the
  artifact loader builds empty compressed modules from it and passes them as
  ``tables`` to `_load_state`, which builds the module, swaps them in and loads the
  ``state_dict`` strictly.
- `finetune(train, valid, epochs)` re-runs the same `Trainer` on the current
  (possibly compressed) module, for quantization-aware fine-tuning.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.models.base import ModelConfig, Recommender
from cinerec.train.options import fit_options
from cinerec.train.trainer import (
    Trainer,
    TrainerConfig,
    TrainHistory,
    resolve_device,
    seed_everything,
)


class TorchModelConfig(TrainerConfig, ModelConfig):
    """Shared hyper-parameters of torch models: every `TrainerConfig` field, flat (so
    ``--set epochs=5`` works), plus the validation hold-out."""

    #: Share of train held out (seeded) for early stopping / the plateau schedule
    #: when ``fit`` gets no ``valid`` and one of them needs it; 0 disables.
    valid_fraction: float = Field(0.1, ge=0, lt=1)


class TorchRecommender(Recommender):
    """Base of torch models; subclasses implement the module-level hooks below."""

    Config: ClassVar[type[ModelConfig]] = TorchModelConfig
    table_backend: ClassVar[str] = "torch"
    #: Dotted paths (inside ``module_``) of the embedding tables `embedding_tables` lists.
    embedding_paths: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.module_: nn.Module | None = None
        self.history_: TrainHistory | None = None

    # ---- subclass hooks -----------------------------------------------------------
    @abstractmethod
    def build_module(self) -> nn.Module:
        """A freshly initialised module for the fitted sizes (``n_users_``, ``n_items_``...)."""

    @abstractmethod
    def train_tensors(self, train: Dataset) -> dict[str, Tensor]:
        """Tensors (equal first dimension) the Trainer shuffles and slices into batches."""

    @abstractmethod
    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        """Loss of one batch (or ``(loss, weight)``); see `cinerec.train.trainer`."""

    @abstractmethod
    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:
        """Ratings for a batch of warm pairs (module in eval mode, no grad)."""

    @abstractmethod
    def _score_module(self, users: Tensor) -> Tensor:
        """(len(users), n_items) scores for a batch of warm users."""

    def valid_tensors(self, valid: Dataset) -> dict[str, Tensor] | Any:
        """Validation input for the Trainer: by default (user, item, rating) triples."""
        return _triples(valid)

    def _prepare_training(self, train: Dataset) -> None:
        """Hook run before `build_module` in `_fit` (e.g. to cache train structures)."""

    # ---- compression hooks ------------------------------------------------------------
    def embedding_tables(self) -> dict[str, nn.Module]:
        """Dotted path inside ``module_`` -> embedding module, for every table."""
        module = self._module()
        return {p: module.get_submodule(p) for p in self.embedding_paths}

    def replace_embedding(self, path: str, new_module: nn.Module) -> None:
        """Swap the embedding module at ``path`` (a key of `embedding_tables`)."""
        module = self._module()
        if path not in self.embedding_paths:
            raise ConfigError(
                f"{path!r} is not an embedding table of {self.name!r}; "
                f"tables: {', '.join(self.embedding_paths) or 'none'}"
            )
        parent_path, _, attr = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        setattr(parent, attr, new_module.to(self.device_))

    def finetune(
        self, train: Dataset, valid: Dataset | None = None, epochs: int | None = None, **trainer_overrides: Any
    ) -> TrainHistory:
        """Continue training the current module (e.g. a compressed one) with the same
        Trainer and loss; ``trainer_overrides`` change `TrainerConfig` fields (lr, ...).
        The module is not rebuilt and no checkpoint is resumed."""
        self._check_fitted()
        overrides = {"validate_start": True} | trainer_overrides
        if epochs is not None:
            overrides["epochs"] = epochs
        fit_on, valid = self._training_parts(train, valid)
        self._prepare_training(fit_on)
        options = fit_options(self.options_, resume=False, checkpoint_dir=None)
        return self._run_trainer(fit_on, valid, options, **overrides)

    def _training_parts(self, train: Dataset, valid: Dataset | None) -> tuple[Dataset, Dataset | None]:
        """(fit part, validation part). Without ``valid``, when early stopping or the
        plateau schedule needs one, a seeded share of train is held out: the same
        share for `fit` and `finetune`, so fine-tuning never trains on it."""
        needs_valid = self.config.early_stopping_patience is not None or self.config.schedule == "plateau"
        if valid is None and needs_valid and self.config.valid_fraction > 0:
            return holdout(train, self.config.valid_fraction, self.config.seed)
        return train, valid

    # ---- Recommender hooks ------------------------------------------------------------
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        seed_everything(self.config.seed)
        self.device_ = resolve_device(self.options_.device)
        fit_on, valid = self._training_parts(train, valid)
        self._prepare_training(fit_on)
        self.module_ = self.build_module().to(self.device_)
        self.history_ = self._run_trainer(fit_on, valid, self.options_)

    def _run_trainer(self, train: Dataset, valid: Dataset | None, options: Any, **overrides: Any) -> TrainHistory:
        cfg = self.trainer_config().model_copy(update=overrides)
        trainer = Trainer(TrainerConfig.model_validate(cfg.model_dump()), options=options)
        valid_in = self.valid_tensors(valid) if valid is not None and valid.n_ratings else None
        module = self._module()
        history = trainer.fit(module, self.batch_loss, self.train_tensors(train), valid_in,
                              callbacks=getattr(self, "fit_callbacks_", ()))
        module.eval()
        return history

    def trainer_config(self) -> TrainerConfig:
        """The `TrainerConfig` this model's config describes."""
        return TrainerConfig(**{f: getattr(self.config, f) for f in TrainerConfig.model_fields})

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        module = self._module()
        module.eval()
        out = np.empty(users.shape[0], dtype=np.float32)
        bs = self.options_.eval_batch_size
        with torch.no_grad():
            for s in range(0, users.shape[0], bs):
                u = torch.as_tensor(users[s : s + bs], dtype=torch.long, device=self.device_)
                i = torch.as_tensor(items[s : s + bs], dtype=torch.long, device=self.device_)
                out[s : s + bs] = self._predict_module(u, i).float().cpu().numpy()
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        module = self._module()
        module.eval()
        out = np.empty((users.shape[0], self.n_items_), dtype=np.float32)
        # Rows per batch so one batch is about eval_batch_size * 64 scores.
        bs = max(1, (self.options_.eval_batch_size * 64) // max(self.n_items_, 1))
        with torch.no_grad():
            for s in range(0, users.shape[0], bs):
                u = torch.as_tensor(users[s : s + bs], dtype=torch.long, device=self.device_)
                out[s : s + bs] = self._score_module(u).float().cpu().numpy()
        return out

    def _state(self) -> dict[str, np.ndarray]:
        # float32/float16 (quantization scales, PQ codebooks) and integer buffers
        # (quantized codes, BatchNorm's num_batches_tracked) keep their dtype, so a
        # compressed table is as small on disk as in memory; other floats (float64,
        # bfloat16, which numpy lacks) are stored as float32.
        out = {}
        for k, v in self._module().state_dict().items():
            t = v.detach().cpu()
            if t.is_floating_point() and t.dtype not in (torch.float32, torch.float16):
                t = t.float()
            out[k] = t.contiguous().numpy()
        return out

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.options_.device)
        self.module_ = self.build_module()
        for path, table in tables.items():
            self.replace_embedding(path, table)
        module = self.module_
        target = module.state_dict()
        tensors = {}
        for k, v in arrays.items():
            # Cast to the module's dtype: accepts fp16 as stored now and the fp32
            # scales/codebooks of artifacts written before fp16 was kept.
            t = torch.from_numpy(np.ascontiguousarray(v))
            if k in target and t.dtype != target[k].dtype:
                t = t.to(target[k].dtype)
            tensors[k] = t
        module.load_state_dict(tensors, strict=True)
        module.to(self.device_)
        module.eval()
        self._after_load()

    def _after_load(self) -> None:
        """Hook run after the weights are loaded (rebuild caches)."""

    # ---- helpers ------------------------------------------------------------------
    def _module(self) -> nn.Module:
        if self.module_ is None:
            self._check_fitted()
            raise ConfigError(f"model {self.name!r} has no module")  # pragma: no cover
        return self.module_

    @property
    def device(self) -> torch.device:
        return getattr(self, "device_", torch.device("cpu"))


def holdout(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Seeded random split of ``train`` rows into (fit part, validation part)."""
    rng = np.random.default_rng(seed)
    n_valid = int(round(train.n_ratings * fraction))
    if n_valid == 0 or n_valid >= train.n_ratings:
        raise ConfigError(
            f"valid_fraction={fraction} leaves no rows to fit or validate on "
            f"({train.n_ratings} ratings); pass valid= or change valid_fraction"
        )
    mask = np.zeros(train.n_ratings, dtype=bool)
    mask[rng.permutation(train.n_ratings)[:n_valid]] = True
    return train.subset(~mask, name=f"{train.name}-fit"), train.subset(mask, name=f"{train.name}-valid")


def _triples(data: Dataset) -> dict[str, Tensor]:
    return {
        "user": torch.from_numpy(data.users.astype(np.int64)),
        "item": torch.from_numpy(data.items.astype(np.int64)),
        "rating": torch.from_numpy(data.ratings.copy()),
    }


def dot_all(table: nn.Module, vecs: Tensor) -> Tensor:
    """``vecs @ table.T`` over every row of an embedding module, using its ``dot_all``
    when it has one (quantized tables score without rebuilding fp32 weights)."""
    if hasattr(table, "dot_all"):
        return table.dot_all(vecs)
    return vecs @ table.weight.T
