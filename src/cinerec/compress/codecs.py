"""The explicit registry of compressed-table kinds, and the bridge to numpy models.

Every compressed table is a torch module (`CompressedEmbedding`, or the QAT
`FakeQuantEmbedding`) described by a JSON spec (``{"kind": ..., shapes...}``). `CODECS`
names each kind once, here; nothing registers itself on import. `module_from_spec`
builds an empty module from a spec (the artifact loader fills it from the weights).

The numpy models (svd, svdpp, als, ials) read their factor tables through the
`cinerec.models.tables.EmbeddingTable` protocol; `NumpyTable` adapts a compressed
torch module to it, so one implementation of each codec serves both kinds of model.
`empty_tables(model, spec)` gives the empty tables of a compressed artifact in the form
the model takes (torch modules, or `NumpyTable`s).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cinerec.compress.hashing import HashedEmbedding, QREmbedding
from cinerec.compress.ptq import QuantizedEmbedding
from cinerec.compress.qat import FakeQuantEmbedding
from cinerec.compress.vq import PQEmbedding, RQEmbedding
from cinerec.errors import ArtifactError

#: spec kind -> module class (the one place a kind is named).
CODECS: dict[str, type[nn.Module]] = {
    cls.kind: cls
    for cls in (QuantizedEmbedding, PQEmbedding, RQEmbedding, HashedEmbedding, QREmbedding, FakeQuantEmbedding)
}


def module_from_spec(spec: dict[str, Any]) -> nn.Module:
    """An EMPTY module of the kind and shapes in ``spec`` (filled by load_state_dict)."""
    if not isinstance(spec, dict):
        raise ArtifactError(f"a compressed table's spec must be an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    cls = CODECS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ArtifactError(
            f"unknown compressed embedding kind {kind!r} in the artifact; known: "
            f"{', '.join(sorted(CODECS))} (was it written by a newer cinerec?)"
        )
    args = {k: v for k, v in spec.items() if k != "kind"}
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"compressed table spec {spec} is invalid ({e})") from None


class NumpyTable:
    """A compressed torch table seen as a numpy `EmbeddingTable` (float32 in and out)."""

    def __init__(self, module: nn.Module):
        self.module = module.cpu().eval()
        self.num_embeddings = int(module.num_embeddings)
        self.embedding_dim = int(module.embedding_dim)

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.module(torch.as_tensor(np.asarray(idx, dtype=np.int64))).float().numpy()

    def dot_all(self, vecs: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(vecs, dtype=np.float32))
        squeeze = v.ndim == 1
        with torch.no_grad():
            out = self.module.dot_all(v[None, :] if squeeze else v).numpy()
        return out[0] if squeeze else out

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().contiguous().numpy() for k, v in self.module.state_dict().items()}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        target = self.module.state_dict()
        tensors = {}
        for k, v in arrays.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            tensors[k] = t.to(target[k].dtype) if k in target and t.dtype != target[k].dtype else t
        try:
            self.module.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            raise ArtifactError(f"a compressed table does not fit its spec ({e})") from None
        self.module.eval()

    def nbytes(self) -> int:
        return int(self.module.nbytes())

    def spec(self) -> dict[str, Any]:
        return self.module.spec()


def torch_view(table: Any) -> nn.Module | None:
    """The compressed torch module behind a table (None for a dense array/embedding)."""
    if isinstance(table, NumpyTable):
        return table.module
    if isinstance(table, nn.Module) and type(table) in CODECS.values():
        return table
    return None


def wrap_for(model: Any, module: nn.Module) -> Any:
    """``module`` in the form ``model`` keeps its tables in."""
    return NumpyTable(module) if getattr(model, "table_backend", "numpy") == "numpy" else module


def empty_tables(model: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Empty compressed tables (by table name) for the compression ``spec`` of an artifact."""
    tables = spec.get("tables", {})
    if not isinstance(tables, dict):
        raise ArtifactError("the compression spec's 'tables' must be an object")
    known = set(model.factor_attrs) if model.table_backend == "numpy" else set(model.embedding_paths)
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ArtifactError(
            f"the compression spec names tables {', '.join(unknown)} that {model.name!r} does not "
            f"have (tables: {', '.join(sorted(known)) or 'none'})"
        )
    return {name: wrap_for(model, module_from_spec(s)) for name, s in tables.items()}
