"""`GRU4Rec` ("gru4rec"): a recurrent network over the user's rating sequence.

Hidasi et al. (ICLR 2016) with the choices Hidasi & Czapp (RecSys 2023) found to
matter: the loss (full-softmax cross-entropy by default; sampled cross-entropy and
BPR-max over negatives shared by the batch, drawn in proportion to
``count ** negative_alpha``, as options), tied input/output item embeddings
("constrained embeddings"), dropout on the embeddings and on the final hidden state.
The network: embeddings -> GRU (``n_layers``, ``hidden_size``) -> a linear map back
to the embedding space when the sizes differ; see `cinerec.models.sequence.base`.
Histories are read as left-padded windows of the last ``max_len`` ratings (the
padding is the zero vector, the same in training and serving).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor, nn

from cinerec.models.base import ModelConfig
from cinerec.models.search import Choice, FloatRange, IntRange, Param
from cinerec.models.sequence.base import SequenceConfig, SequenceModule, SequenceRecommender
from cinerec.train.sequences import N_GAP_TOKENS, n_rating_tokens


class GRU4RecConfig(SequenceConfig):
    hidden_size: int = Field(128, ge=1)
    n_layers: int = Field(1, ge=1, le=8)


class GRU4RecModule(SequenceModule):
    def __init__(self, n_items: int, n_ratings: int, config: GRU4RecConfig):
        d = config.embedding_dim
        super().__init__(n_items, d, n_ratings, N_GAP_TOKENS, config)
        self.gru = nn.GRU(d, config.hidden_size, num_layers=config.n_layers, batch_first=True,
                          dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.out = nn.Linear(config.hidden_size, d) if config.hidden_size != d else nn.Identity()
        self.out_dropout = nn.Dropout(config.dropout)

    def encode(self, items: Tensor, ratings: Tensor, gaps: Tensor) -> Tensor:
        states, _ = self.gru(self.embed(items, ratings, gaps))
        return self.out(self.out_dropout(states))


class GRU4Rec(SequenceRecommender):
    """GRU over the last ``max_len`` ratings, next-item objective."""

    name = "gru4rec"
    Config: ClassVar[type[ModelConfig]] = GRU4RecConfig
    search_space: ClassVar[dict[str, Param]] = {
        "embedding_dim": IntRange(32, 256, log=True), "hidden_size": IntRange(32, 256, log=True),
        "dropout": FloatRange(0.0, 0.5), "lr": FloatRange(1e-4, 1e-2, log=True),
        "max_len": Choice((25, 50, 100, 200)),
    }  # fmt: skip

    def build_module(self) -> nn.Module:
        return GRU4RecModule(self.n_items_, n_rating_tokens(self.rating_scale_), self.config)
