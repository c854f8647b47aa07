"""Post-training quantization: row-wise asymmetric INT8 / INT4 with true nibble packing.

Convention (fbgemm's "fused rowwise" format): per row, ``offset = min(row)``,
``scale = (max(row) - min(row)) / (2^b - 1)``, ``q = round((x - offset) / scale)``,
``x_hat = q * scale + offset``; scale and offset are stored in fp16.

Paper 000 (3.2) writes ``q = round((x - zero_point) / scale)``: the same formula with
``zero_point = offset`` expressed in units of x. The integer-arithmetic convention of
PyTorch/ONNX, ``q = round(x / scale + z)`` with ``z = -offset / scale`` in units of q, is
again the same map (``x/scale - offset/scale = (x - offset)/scale``); `affine_zero_point`
and `quantize_affine` expose it and the tests check the three agree.

fp16 rounding of the stored parameters is done *before* coding (offset rounded down,
scale rounded up) so every element is within half a stored step of its value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cinerec.compress.base import CompressedEmbedding, blockwise_dot
from cinerec.errors import ConfigError

#: Smallest normal fp16: a smaller scale would be a subnormal and lose precision.
_MIN_SCALE = float(torch.finfo(torch.float16).tiny)
#: Below this many users per call the numba kernels (read only the codes) beat the
#: blockwise float matmul; above it the matmul is compute-bound and wins.
SMALL_BATCH = 16


def _check_bits(bits: int) -> int:
    if bits not in (4, 8):
        raise ConfigError(f"bits must be 4 or 8, got {bits!r}")
    return bits


def _fp16_down(x: torch.Tensor) -> torch.Tensor:
    h = x.to(torch.float16)
    return torch.where(h.float() > x, torch.nextafter(h, torch.full_like(h, -65504)), h)


def _fp16_up(x: torch.Tensor) -> torch.Tensor:
    h = x.to(torch.float16)
    return torch.where(h.float() < x, torch.nextafter(h, torch.full_like(h, 65504)), h)


def rowwise_params(
    weight: torch.Tensor, bits: int, per_row: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp16 ``(scale, offset)`` of shape (n,) (per row) or (1,) (whole table)."""
    levels = 2 ** _check_bits(bits) - 1
    w = weight.detach().float()
    lo = w.amin(dim=1) if per_row else w.amin().reshape(1)
    hi = w.amax(dim=1) if per_row else w.amax().reshape(1)
    offset = _fp16_down(lo)
    scale = _fp16_up(((hi - offset.float()) / levels).clamp_min(_MIN_SCALE))
    return scale, offset


def quantize_rows(
    weight: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, bits: int
) -> torch.Tensor:
    """Unpacked uint8 codes ``round((x - offset) / scale)`` clamped to [0, 2^b - 1]."""
    levels = 2 ** _check_bits(bits) - 1
    s = scale.float().reshape(-1, 1)
    o = offset.float().reshape(-1, 1)
    q = torch.round((weight.detach().float() - o) / s).clamp_(0, levels)
    return q.to(torch.uint8)


def dequantize_rows(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """float32 ``codes * scale + offset`` (unpacked codes)."""
    return codes.float() * scale.float().reshape(-1, 1) + offset.float().reshape(-1, 1)


def affine_zero_point(scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The zero point ``z = -offset / scale`` of the ``round(x / scale + z)`` convention."""
    return -offset.float() / scale.float()


def quantize_affine(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int) -> torch.Tensor:
    """``clamp(round(x / scale + zero_point))``: identical codes to `quantize_rows`."""
    levels = 2 ** _check_bits(bits) - 1
    q = torch.round(x.float() / scale.float().reshape(-1, 1) + zero_point.float().reshape(-1, 1))
    return q.clamp_(0, levels).to(torch.uint8)


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """(n, d) uint8 codes < 16 -> (n, ceil(d/2)) uint8; low nibble = even column."""
    if codes.dtype != torch.uint8:
        raise ConfigError(f"pack_int4 needs uint8 codes, got {codes.dtype}")
    n, d = codes.shape
    if d % 2:
        codes = torch.cat([codes, torch.zeros(n, 1, dtype=torch.uint8, device=codes.device)], 1)
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of `pack_int4`: (n, ceil(dim/2)) uint8 -> (n, dim) uint8 codes."""
    lo = packed & 15
    hi = packed >> 4
    return torch.stack([lo, hi], dim=-1).reshape(packed.shape[0], -1)[:, :dim]


class QuantizedEmbedding(CompressedEmbedding):
    """Row-wise (or per-table) asymmetric INT8/INT4 embedding table.

    Buffers: ``codes`` uint8 (n, dim) for INT8 or (n, ceil(dim/2)) nibble-packed for
    INT4, ``scale`` and ``offset`` fp16 of shape (n,) per row or (1,) per table.
    """

    kind = "quantized"

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int = 8, per_row: bool = True):
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.bits = _check_bits(int(bits))
        self.per_row = bool(per_row)
        width = self.embedding_dim if self.bits == 8 else (self.embedding_dim + 1) // 2
        n_params = self.num_embeddings if self.per_row else 1
        self.register_buffer("codes", torch.zeros(self.num_embeddings, width, dtype=torch.uint8))
        self.register_buffer("scale", torch.ones(n_params, dtype=torch.float16))
        self.register_buffer("offset", torch.zeros(n_params, dtype=torch.float16))

    @classmethod
    def from_float(cls, weight: torch.Tensor, bits: int = 8, per_row: bool = True) -> QuantizedEmbedding:
        """Quantize an fp32 table (min/max calibration)."""
        scale, offset = rowwise_params(weight, bits, per_row)
        return cls.from_params(weight, scale, offset, bits, per_row)

    @classmethod
    def from_params(
        cls, weight: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, bits: int, per_row: bool = True
    ) -> QuantizedEmbedding:
        """Quantize with given fp16-representable scale/offset (e.g. learned by QAT)."""
        w = weight.detach().float().cpu()
        mod = cls(w.shape[0], w.shape[1], bits, per_row)
        scale = scale.detach().reshape(-1).to(torch.float16).cpu()
        offset = offset.detach().reshape(-1).to(torch.float16).cpu()
        codes = quantize_rows(w, scale, offset, bits)
        mod.codes.copy_(codes if bits == 8 else pack_int4(codes))
        mod.scale.copy_(scale)
        mod.offset.copy_(offset)
        return mod

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "bits": self.bits, "per_row": self.per_row}

    def _codes(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.bits == 8 else unpack_int4(rows, self.embedding_dim)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.long()
        flat = idx.reshape(-1)
        codes = self._codes(self.codes[flat])
        scale = self.scale[flat] if self.per_row else self.scale
        offset = self.offset[flat] if self.per_row else self.offset
        return dequantize_rows(codes, scale, offset).reshape(*idx.shape, self.embedding_dim)

    def _params_f32(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(n,) float32 scale and offset, cached until the fp16 buffers change: the
        conversion is cheap, but every small torch op can stall for a scheduler slice
        on a loaded machine, which dominated single-user latency (11 ms vs 0.5 ms)."""
        key = (id(self.scale), self.scale._version, id(self.offset), self.offset._version)
        cached = getattr(self, "_f32_cache", None)
        if cached is None or cached[0] != key:
            n = self.num_embeddings
            scale, offset = self.scale.float().expand(n), self.offset.float().expand(n)
            cached = (key, scale.contiguous(), offset.contiguous())
            self._f32_cache = cached
        return cached[1], cached[2]

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        u = user_vecs.detach().float()
        n = self.num_embeddings
        scale, offset = self._params_f32()
        if u.shape[0] <= SMALL_BATCH and self.codes.device.type == "cpu":
            from cinerec.compress import _kernels

            un = u.contiguous().numpy()
            sc, of = scale.numpy(), offset.numpy()
            if self.bits == 8:
                out = _kernels.dot_u8(self.codes.numpy(), sc, of, un)
            else:
                if un.shape[1] % 2:
                    un = np.concatenate([un, np.zeros((un.shape[0], 1), np.float32)], 1)
                out = _kernels.dot_u4(self.codes.numpy(), sc, of, un)
            return torch.from_numpy(out)
        # Compute-bound regime: decode one block of rows to fp32, then one BLAS matmul.
        return blockwise_dot(u, n, lambda s, e: torch.addcmul(
            offset[s:e, None], self._codes(self.codes[s:e]).float(), scale[s:e, None]))
