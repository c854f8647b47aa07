"""Embedding compression: PTQ (INT8/INT4), QAT, product/residual quantization, hashing.

Entry points: `cinerec.compress.api.compress_model`, `embedding_bytes`,
`cinerec.compress.codecs` (the registry of table kinds, used by the artifact loader).
See docs/compression.md.
"""

from cinerec.compress.hashing import HashedEmbedding, QREmbedding, collision_rate
from cinerec.compress.ptq import QuantizedEmbedding
from cinerec.compress.qat import FakeQuantEmbedding
from cinerec.compress.vq import PQEmbedding, RQEmbedding

__all__ = [
    "FakeQuantEmbedding",
    "HashedEmbedding",
    "PQEmbedding",
    "QREmbedding",
    "QuantizedEmbedding",
    "RQEmbedding",
    "collision_rate",
]
