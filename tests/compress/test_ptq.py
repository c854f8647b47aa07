"""Row-wise INT8/INT4 quantization: error bounds, packing, formulas, scoring."""

from __future__ import annotations

import pytest
import torch

from cinerec.compress.ptq import (
    QuantizedEmbedding,
    affine_zero_point,
    pack_int4,
    quantize_affine,
    quantize_rows,
    rowwise_params,
    unpack_int4,
)
from cinerec.errors import ConfigError


def _table(n: int = 50, d: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * torch.rand(n, 1, generator=g) * 3


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("per_row", [True, False])
def test_error_within_half_a_step(bits: int, per_row: bool) -> None:
    w = _table()
    q = QuantizedEmbedding.from_float(w, bits, per_row)
    err = (q(torch.arange(w.shape[0])) - w).abs()
    step = q.scale.float().reshape(-1, 1).expand_as(w)
    assert (err <= step / 2 + 1e-6).all()
    assert q.codes.dtype == torch.uint8 and q.scale.dtype == torch.float16


def test_int4_error_larger_than_int8() -> None:
    w = _table()
    e8 = (QuantizedEmbedding.from_float(w, 8).dequantize() - w).pow(2).mean()
    e4 = (QuantizedEmbedding.from_float(w, 4).dequantize() - w).pow(2).mean()
    assert e4 > 10 * e8


@pytest.mark.parametrize("d", [1, 2, 7, 8, 13])
def test_int4_packing_round_trips(d: int) -> None:
    codes = torch.randint(0, 16, (9, d), dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (9, (d + 1) // 2) and packed.dtype == torch.uint8
    assert torch.equal(unpack_int4(packed, d), codes)


def test_int4_storage_is_half_a_byte_per_element() -> None:
    w = _table(40, 16)
    q4, q8 = QuantizedEmbedding.from_float(w, 4), QuantizedEmbedding.from_float(w, 8)
    assert q4.codes.numel() * 2 == q8.codes.numel()
    assert q8.nbytes() == 40 * 16 + 40 * 4


def test_paper_and_affine_formulas_agree() -> None:
    """round((x - offset)/scale) (paper 000, fbgemm) == round(x/scale + z), z = -offset/scale."""
    w = _table()
    scale, offset = rowwise_params(w, 8)
    a = quantize_rows(w, scale, offset, 8)
    b = quantize_affine(w, scale, affine_zero_point(scale, offset), 8)
    # Float rounding of the two expressions may flip an exact .5 tie by one code.
    assert (a.int() - b.int()).abs().max() <= 1
    assert (a == b).float().mean() > 0.99


def test_constant_row_is_exact_enough() -> None:
    w = torch.full((3, 8), 0.25)
    q = QuantizedEmbedding.from_float(w, 4)
    assert torch.allclose(q.dequantize(), w, atol=1e-3)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("batch", [1, 3, 40])
@pytest.mark.parametrize("d", [8, 9])
def test_dot_all_equals_dequantized_matmul(bits: int, batch: int, d: int) -> None:
    w = _table(70, d)
    q = QuantizedEmbedding.from_float(w, bits)
    u = torch.randn(batch, d)
    expected = u @ q.dequantize().T
    assert torch.allclose(q.dot_all(u), expected, atol=1e-4, rtol=1e-4)


def test_lookup_shape_and_bits_validation() -> None:
    q = QuantizedEmbedding.from_float(_table(), 8)
    assert q(torch.tensor([[0, 1], [2, 3]])).shape == (2, 2, 12)
    with pytest.raises(ConfigError):
        QuantizedEmbedding(4, 4, bits=3)


@pytest.mark.parametrize("block", [7, 16, 70, 1000])
def test_blockwise_dot_covers_every_row_across_blocks(block: int) -> None:
    from cinerec.compress.base import blockwise_dot

    w = _table(70, 9)
    u = torch.randn(5, 9)
    got = blockwise_dot(u, 70, lambda s, e: w[s:e], block=block)
    assert torch.allclose(got, u @ w.T, atol=1e-5)


def test_dot_all_sees_scale_changes_after_caching() -> None:
    # dot_all caches fp32 copies of the fp16 scale/offset; an in-place update (as
    # load_state_dict does) must invalidate them.
    q = QuantizedEmbedding.from_float(_table(40, 8), 8)
    u = torch.randn(2, 8)
    before = q.dot_all(u)
    with torch.no_grad():
        q.scale.mul_(2)
        q.offset.zero_()
    assert torch.allclose(q.dot_all(u), u @ q.dequantize().T, atol=1e-4)
    assert not torch.allclose(q.dot_all(u), before, atol=1e-3)
