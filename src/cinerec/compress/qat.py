"""Quantization-aware training: fake-quantized embeddings with learnable scale and
zero point (LSQ, Esser et al. 2020; LSQ+, Bhalgat et al. 2020), and the three-stage
pipeline of paper 000 (3.2): full-precision fit -> QAT fine-tuning -> packed export.

Forward pass of `FakeQuantEmbedding` for a looked-up row ``w`` with scale ``s`` and
offset ``o`` (the paper's zero_point, in units of w)::

    q = clamp(round_ste((w - o) / s), 0, 2^b - 1);   w_hat = q * s + o

``round_ste`` rounds forward and passes the gradient straight through, so autograd gives
exactly the LSQ+ gradients for s and o (clipped elements push the range, the others its
rounding error). s and o are multiplied by the LSQ gradient scale
``g = 1 / sqrt(N * Qp)`` (N = elements sharing the parameter) in the backward pass, and
are rounded to fp16 in the forward pass (straight-through) so the export, which stores
them in fp16, reproduces the trained forward exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cinerec.compress.ptq import _MIN_SCALE, QuantizedEmbedding, _check_bits, rowwise_params

if TYPE_CHECKING:
    from cinerec.data.dataset import Dataset


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return (x.round() - x).detach() + x


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Identity forward, gradient multiplied by ``g`` (LSQ's step-size gradient scale)."""
    return (x - x * g).detach() + x * g


def fp16_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest fp16 value forward, identity gradient."""
    return (x.half().float() - x).detach() + x


class FakeQuantEmbedding(nn.Module):
    """Embedding table trained through simulated INT``bits`` row-wise quantization.

    Parameters: ``weight`` (n, d) latent fp32 table, ``scale`` and ``offset`` of shape
    (n, 1) per row or (1, 1) per table, learnable, initialised from min/max of the table.
    """

    kind = "fakequant"

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int = 4, per_row: bool = True):
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.bits = _check_bits(int(bits))
        self.per_row = bool(per_row)
        self.qmax = 2**self.bits - 1
        n_params = self.num_embeddings if self.per_row else 1
        per_param = self.embedding_dim if self.per_row else self.num_embeddings * self.embedding_dim
        self.grad_scale = 1.0 / math.sqrt(per_param * self.qmax)
        self.weight = nn.Parameter(torch.zeros(self.num_embeddings, self.embedding_dim))
        self.scale = nn.Parameter(torch.ones(n_params, 1))
        self.offset = nn.Parameter(torch.zeros(n_params, 1))

    @classmethod
    def from_float(cls, weight: torch.Tensor, bits: int = 4, per_row: bool = True) -> FakeQuantEmbedding:
        """Start from a trained fp32 table; scale/offset from its row min/max."""
        w = weight.detach().float()
        mod = cls(w.shape[0], w.shape[1], bits, per_row).to(w.device)
        scale, offset = rowwise_params(w, bits, per_row)
        with torch.no_grad():
            mod.weight.copy_(w)
            mod.scale.copy_(scale.float().reshape(-1, 1))
            mod.offset.copy_(offset.float().reshape(-1, 1))
        return mod

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "bits": self.bits, "per_row": self.per_row}

    def _params(self, flat: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        s, o = self.scale, self.offset
        if self.per_row and flat is not None:
            s, o = s[flat], o[flat]
        s = fp16_ste(grad_scale(s, self.grad_scale).abs().clamp_min(_MIN_SCALE))
        o = fp16_ste(grad_scale(o, self.grad_scale))
        return s, o

    def _fake(self, w: torch.Tensor, flat: torch.Tensor | None) -> torch.Tensor:
        s, o = self._params(flat)
        q = torch.clamp(round_ste((w - o) / s), 0, self.qmax)
        return q * s + o

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.long().reshape(-1)
        out = self._fake(self.weight[flat], flat)
        return out.reshape(*idx.shape, self.embedding_dim)

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        return user_vecs @ self._fake(self.weight, None).T

    def nbytes(self) -> int:
        return int(sum(p.numel() * p.element_size() for p in self.parameters()))

    def to_quantized(self) -> QuantizedEmbedding:
        """Stage 3: pack the latent table with the learned (fp16) scale and offset."""
        with torch.no_grad():
            s = self.scale.detach().abs().clamp_min(_MIN_SCALE).half()
            o = self.offset.detach().half()
        return QuantizedEmbedding.from_params(self.weight, s, o, self.bits, self.per_row)


def qat_pipeline(
    model: Any,
    train: Dataset,
    valid: Dataset | None = None,
    bits: int = 4,
    epochs: int = 5,
    per_row: bool = True,
    table_bits: dict[str, tuple[int, bool]] | None = None,
) -> Any:
    """The three stages of paper 000 (3.2) on a `TorchRecommender`, in place.

    1. full-precision training: ``model.fit(train, valid)`` unless already fitted;
    2. QAT fine-tuning: every embedding table becomes a `FakeQuantEmbedding` and the
       model's own Trainer runs ``epochs`` more epochs (``model.finetune``);
    3. export: each table is packed into a `QuantizedEmbedding` with the learned params.

    ``table_bits`` overrides (bits, per_row) per table path (the API keeps 1-d bias
    tables at INT8 per table). Returns the model.
    """
    if not getattr(model, "fitted_", False):
        model.fit(train, valid)
    table_bits = table_bits or {}
    fake: dict[str, FakeQuantEmbedding] = {}
    for path, emb in model.embedding_tables().items():
        b, pr = table_bits.get(path, (bits, per_row))
        fake[path] = FakeQuantEmbedding.from_float(emb.weight, b, pr)
        model.replace_embedding(path, fake[path])
    if epochs > 0:
        model.finetune(train, valid, epochs=epochs)
    for path, fq in fake.items():
        model.replace_embedding(path, fq.to_quantized())
    return model
