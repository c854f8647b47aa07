"""What every compressed embedding module shares: a JSON spec to rebuild an empty
skeleton at load time, its byte count, and scoring against a whole table (`dot_all`).

A compressed module is a drop-in for ``nn.Embedding`` as the models use it:
``module(idx) -> (len(idx), dim)`` float32 rows, plus ``dot_all(u) -> (B, n_rows)``
that scores users against every row without materialising the fp32 table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

#: Rows per block when scoring: the decoded fp32 block (4096 x 64 x 4 = 1 MB) stays in
#: cache while the matmul reads it, and memory stays bounded whatever the table size.
SCORE_BLOCK_ROWS = 4096


def blockwise_dot(
    user_vecs: torch.Tensor,
    n_rows: int,
    decode: Callable[[int, int], torch.Tensor],
    block: int = SCORE_BLOCK_ROWS,
) -> torch.Tensor:
    """``user_vecs @ table.T`` where ``decode(s, e)`` gives rows s..e-1 as fp32.

    The work is one fp32 GEMM (the same as scoring the fp32 table) plus decoding each row
    once; only one decoded block exists at a time. The product goes straight into the
    contiguous (B, n_rows) output, with no extra pass over it (an epilogue such as
    ``* scale + offset`` on the (B, n) product made INT8 2.6x slower than fp32 at
    1024 x 62k; decoding the block first costs n x d instead of B x n).
    """
    u = user_vecs.float()  # no detach: QR tables may score with gradients
    out = torch.empty(u.shape[0], n_rows, dtype=torch.float32, device=u.device)
    for s in range(0, n_rows, block):
        e = min(s + block, n_rows)
        out[:, s:e] = u @ decode(s, e).T
    return out


class CompressedEmbedding(nn.Module):
    """Base of the compressed embedding modules."""

    kind: ClassVar[str] = ""
    num_embeddings: int
    embedding_dim: int

    def spec(self) -> dict[str, Any]:
        """JSON description (kind + constructor arguments) of this module's shapes."""
        raise NotImplementedError

    def nbytes(self) -> int:
        """Bytes of every parameter and persistent buffer (what the artifact stores)."""
        total = sum(p.numel() * p.element_size() for p in self.parameters())
        total += sum(b.numel() * b.element_size() for b in self.buffers())
        return int(total)

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        """(B, dim) user vectors -> (B, num_embeddings) dot products with every row."""
        raise NotImplementedError

    def dequantize(self) -> torch.Tensor:
        """The full (num_embeddings, dim) float32 table (for tests and analysis only)."""
        idx = torch.arange(self.num_embeddings, device=self._device())
        with torch.no_grad():
            return torch.cat([self(idx[s : s + SCORE_BLOCK_ROWS])
                              for s in range(0, self.num_embeddings, SCORE_BLOCK_ROWS)])

    @property
    def weight(self) -> torch.Tensor:
        """Dequantized table, so code written for ``nn.Embedding.weight`` keeps working
        (slow path: prefer ``forward`` / ``dot_all``)."""
        return self.dequantize()

    def _device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")
