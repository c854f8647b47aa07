"""One entry point to compress a model's factor or embedding tables.

`compress_model(model, method, train, valid, **options)` replaces every table listed by
``model.embedding_tables()`` in place and records a JSON spec in ``model.compression``
(method, options, each table's module spec and original shape), which the artifact
stores; `cinerec.compress.codecs.empty_tables` rebuilds empty tables from that spec
when the artifact is loaded. Torch models (mf-torch, ncf, autorec) take every method;
numpy factor models (svd, svdpp, als, ials) take the methods that need no retraining
(int8, int4, pq and rq without fine-tuning), through `codecs.NumpyTable`.

Methods:

- ``int8`` / ``int4``: post-training row-wise quantization (`ptq`), no data needed;
- ``qat-int8`` / ``qat-int4``: quantization-aware fine-tuning through the model's Trainer
  then packed export (`qat`), needs ``train`` (``epochs``, default 5);
- ``pq`` / ``rq``: product / residual k-means codes (`vq`); ``finetune_epochs > 0``
  (needs ``train``) trains the codebooks end to end with the codes fixed;
- ``hash`` / ``qr``: hashed / quotient-remainder tables, warm-started from the trained
  rows and retrained through the Trainer (``epochs``, default 5), needs ``train``.

Tables narrower than `MIN_ROW_DIM` (none in the current models) would be quantized to
INT8 per table rather than row-wise, so per-row parameters do not outweigh the codes.

``pq`` / ``rq`` only vector-quantize a table with at least ``min_rows`` rows (default
`VQ_MIN_ROWS_PER_CENTROID` x ``centroids`` = 2,048): below that the codebooks weigh as
much as the table itself (ml-latest-small's 610-user tables: 256 fp16 centroids of
128 dims are 64 KB per stage against a 312 KB table), so such a table is quantized
row-wise to ``small_table_bits`` (8) instead, and its spec says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cinerec.compress.codecs import torch_view, wrap_for
from cinerec.compress.hashing import HashedEmbedding, QREmbedding
from cinerec.compress.ptq import QuantizedEmbedding
from cinerec.compress.qat import qat_pipeline
from cinerec.compress.vq import PQEmbedding, RQEmbedding
from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.models import tables as tb

METHODS = ("int8", "int4", "qat-int8", "qat-int4", "pq", "rq", "hash", "qr")
#: Methods that retrain through the torch Trainer (torch models only).
TRAINING_METHODS = ("qat-int8", "qat-int4", "hash", "qr")
#: Row-wise scale/offset cost 4 bytes per row: below this width use one per table.
MIN_ROW_DIM = 8
#: pq / rq: a table needs this many rows per centroid before codes + codebooks beat INT8.
VQ_MIN_ROWS_PER_CENTROID = 8


def _tables(model: Any) -> dict[str, Any]:
    tables = model.embedding_tables() if hasattr(model, "embedding_tables") else {}
    if not tables:
        raise ConfigError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no factor or embedding "
            "tables to compress; use svd, svdpp, als, ials, mf-torch, ncf or autorec"
        )
    return tables


def _weight(table: Any) -> torch.Tensor:
    """A dense table (numpy array or ``nn.Embedding``) as a float32 tensor."""
    if isinstance(table, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))
    return table.weight


def _need_data(method: str, train: Dataset | None) -> Dataset:
    if train is None:
        raise ConfigError(
            f"method {method!r} trains the model and needs the training data (train=...); "
            "the CLI rebuilds it from the artifact's provenance"
        )
    return train


def compress_model(
    model: Any,
    method: str,
    train: Dataset | None = None,
    valid: Dataset | None = None,
    **options: Any,
) -> Any:
    """Compress ``model``'s embedding tables in place with ``method``; returns the model.

    Options (all optional): ``bits``, ``per_row`` (int/qat); ``epochs`` (qat, hash, qr);
    ``subvectors``, ``stages``, ``centroids``, ``iters``, ``init``, ``finetune_epochs``,
    ``codebook_dtype``, ``min_rows``, ``small_table_bits`` (pq/rq); ``buckets`` or ``bucket_ratio``, ``n_hashes``,
    ``combine`` (hash/qr); ``seed``; ``lr`` (any method that trains).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown compression method {method!r}; choose one of {', '.join(METHODS)}")
    if getattr(model, "compression", None):
        raise ConfigError(
            f"model is already compressed ({model.compression.get('method')}); "
            "compress the original fp32 artifact instead"
        )
    tables = _tables(model)
    numpy_model = getattr(model, "table_backend", "numpy") == "numpy"
    if numpy_model and (method in TRAINING_METHODS or int(options.get("finetune_epochs", 0)) > 0):
        raise ConfigError(
            f"method {method!r} retrains the model through the torch Trainer, which "
            f"{model.name!r} (a numpy model) does not use; choose int8, int4, pq or rq"
        )
    shapes = {p: _shape(m) for p, m in tables.items()}

    def replace(path: str, module: nn.Module) -> None:
        model.replace_embedding(path, wrap_for(model, module))

    seed = int(options.get("seed", getattr(getattr(model, "config", None), "seed", 0)))
    train_kw = {k: options[k] for k in ("lr",) if k in options}

    if method in ("int8", "int4"):
        bits = int(options.get("bits", 8 if method == "int8" else 4))
        for path, m in tables.items():
            b, pr = _bits_for(shapes[path], bits, options.get("per_row", True))
            replace(path, QuantizedEmbedding.from_float(_weight(m), b, pr))
    elif method in ("qat-int8", "qat-int4"):
        bits = int(options.get("bits", 8 if method == "qat-int8" else 4))
        per_row = bool(options.get("per_row", True))
        table_bits = {p: _bits_for(shapes[p], bits, per_row) for p in tables}
        _with_train_kw(model, train_kw, lambda: qat_pipeline(
            model, _need_data(method, train), valid, bits=bits,
            epochs=int(options.get("epochs", 5)), per_row=per_row, table_bits=table_bits))
    elif method in ("pq", "rq"):
        k = int(options.get("centroids", 256))
        common = {"n_centroids": k, "iters": int(options.get("iters", 20)), "seed": seed,
                  "init": options.get("init", "kmeans++"), "codebook_dtype": "float32"}
        min_rows = int(options.get("min_rows", VQ_MIN_ROWS_PER_CENTROID * k))
        for path, m in tables.items():
            if shapes[path][0] < min_rows:
                b, pr = _bits_for(shapes[path], int(options.get("small_table_bits", 8)), True)
                new = QuantizedEmbedding.from_float(_weight(m), b, pr)
            elif method == "pq":
                new = PQEmbedding.from_float(_weight(m), int(options.get("subvectors", 8)), **common)
            else:
                new = RQEmbedding.from_float(_weight(m), int(options.get("stages", 4)), **common)
            replace(path, new)
        ft = int(options.get("finetune_epochs", 0))
        if ft > 0:
            _with_train_kw(model, train_kw, lambda: model.finetune(_need_data(method, train), valid, epochs=ft))
        dtype = options.get("codebook_dtype", "float16")
        for table in model.embedding_tables().values():
            m = torch_view(table)
            if isinstance(m, PQEmbedding | RQEmbedding):  # tables left INT8 have no codebook
                m.set_codebook_dtype(dtype)
    else:  # hash / qr
        data = _need_data(method, train)
        for path, m in tables.items():
            n, _ = shapes[path]
            buckets = int(options.get("buckets") or max(1, round(n / float(options.get("bucket_ratio", 4.0)))))
            if buckets >= n:
                continue  # nothing to gain on a table already smaller than the budget
            if method == "hash":
                new = HashedEmbedding.from_float(m.weight, buckets, int(options.get("n_hashes", 1)), seed)
            else:
                new = QREmbedding.from_float(m.weight, buckets, options.get("combine", "mult"))
            model.replace_embedding(path, new)
        _with_train_kw(model, train_kw, lambda: model.finetune(data, valid, epochs=int(options.get("epochs", 5))))

    views = {p: torch_view(m) for p, m in model.embedding_tables().items()}
    specs = {p: m.spec() for p, m in views.items() if m is not None}
    model.compression = {
        "method": method,
        "options": {k: v for k, v in options.items() if isinstance(v, str | int | float | bool | None)},
        "tables": specs,
        "shapes": {p: list(s) for p, s in shapes.items()},
    }
    return model


def _with_train_kw(model: Any, train_kw: dict[str, Any], run: Any) -> Any:
    """Run a training stage, passing Trainer overrides (lr) through `finetune`."""
    if not train_kw:
        return run()
    original = model.finetune

    def finetune(train: Dataset, valid: Dataset | None = None, epochs: int | None = None, **kw: Any) -> Any:
        return original(train, valid, epochs=epochs, **(train_kw | kw))

    model.finetune = finetune
    try:
        return run()
    finally:
        del model.finetune  # back to the class method


def _shape(table: Any) -> tuple[int, int]:
    return tb.shape(table)


def _bits_for(shape: tuple[int, int], bits: int, per_row: bool) -> tuple[int, bool]:
    return (bits, bool(per_row)) if shape[1] >= MIN_ROW_DIM else (8, False)


def embedding_bytes(model: Any) -> dict[str, float]:
    """Bytes of the embedding tables: ``fp32_bytes`` (original shapes), ``compressed_bytes``
    (current modules: codes + scales + codebooks...) and their ``ratio``."""
    fp32 = compressed = 0
    for module in _tables(model).values():
        n, d = _shape(module)
        fp32 += n * d * 4
        view = torch_view(module)
        if view is not None:
            compressed += int(view.nbytes())
        elif isinstance(module, np.ndarray):
            compressed += int(module.nbytes)
        elif hasattr(module, "nbytes"):
            compressed += int(module.nbytes())
        else:
            compressed += sum(p.numel() * p.element_size() for p in module.parameters())
    return {"fp32_bytes": fp32, "compressed_bytes": compressed, "ratio": fp32 / max(compressed, 1)}


@torch.no_grad()
def reconstruction_error(model: Any, reference: dict[str, torch.Tensor]) -> dict[str, float]:
    """RMS error per table between the current (compressed) rows and fp32 ``reference``."""
    out = {}
    for path, module in _tables(model).items():
        if path in reference:
            idx = np.arange(reference[path].shape[0])
            if isinstance(module, nn.Module):
                got = module(torch.from_numpy(idx)).float().cpu()
            else:
                got = torch.from_numpy(np.asarray(tb.rows(module, idx), dtype=np.float32))
            out[path] = float(((got - reference[path].float().cpu()) ** 2).mean().sqrt())
    return out
