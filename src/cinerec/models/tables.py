"""Factor tables as the numpy models use them: a dense array, or anything with the
`EmbeddingTable` protocol (a compressed table that `cinerec.compress` builds).

Models read a table only through `rows` and `dot_all`, never by indexing it, so a
quantized or product-quantized table works everywhere a dense one does, and
`cinerec.compress` can plug into any model that lists its tables
(``Recommender.embedding_tables``) without models/ knowing about compression.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EmbeddingTable(Protocol):
    """A read-only (n_rows, dim) float table that may be stored compressed."""

    num_embeddings: int
    embedding_dim: int

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        """float32 rows ``idx`` (len(idx), dim)."""

    def dot_all(self, vecs: np.ndarray) -> np.ndarray:
        """(B, dim) vectors -> (B, n_rows) dot products with every row."""

    def arrays(self) -> dict[str, np.ndarray]:
        """Named arrays to store (codes, scales, codebooks ...)."""

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Fill an empty table from `arrays`' output."""

    def nbytes(self) -> int: ...


Table = np.ndarray | EmbeddingTable


def rows(table: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of a dense or compressed table."""
    if isinstance(table, np.ndarray):
        return table[idx]
    return table.lookup(np.asarray(idx, dtype=np.int64))


def dot_all(vecs: np.ndarray, table: Any) -> np.ndarray:
    """``vecs @ table.T`` for a dense or compressed table."""
    if isinstance(table, np.ndarray):
        return vecs @ table.T
    return table.dot_all(np.ascontiguousarray(vecs, dtype=np.float32))


def dense(table: Any) -> np.ndarray:
    """The whole table as float32 (decoded when compressed)."""
    if isinstance(table, np.ndarray):
        return table
    return rows(table, np.arange(table.num_embeddings))


def shape(table: Any) -> tuple[int, int]:
    if isinstance(table, np.ndarray):
        return int(table.shape[0]), int(table.shape[1])
    return int(table.num_embeddings), int(table.embedding_dim)
