"""Quantization-aware training: learnable scale and zero point, exact export."""

from __future__ import annotations

import torch

from cinerec.compress.qat import FakeQuantEmbedding


def _fit(fq: FakeQuantEmbedding, target: torch.Tensor, steps: int = 30) -> None:
    opt = torch.optim.Adam(fq.parameters(), lr=1e-2)
    idx = torch.arange(target.shape[0])
    for _ in range(steps):
        opt.zero_grad()
        ((fq(idx) - target) ** 2).mean().backward()
        opt.step()


def test_scale_and_zero_point_get_gradients_and_move() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(30, 8, generator=g)
    fq = FakeQuantEmbedding.from_float(w, bits=4)
    s0, o0 = fq.scale.detach().clone(), fq.offset.detach().clone()
    loss = ((fq(torch.arange(30)) - 0.5 * w) ** 2).mean()
    loss.backward()
    assert fq.scale.grad is not None and fq.scale.grad.abs().sum() > 0
    assert fq.offset.grad is not None and fq.offset.grad.abs().sum() > 0
    _fit(fq, 0.5 * w)
    assert not torch.allclose(fq.scale.detach(), s0)
    assert not torch.allclose(fq.offset.detach(), o0)


def test_qat_reduces_error_to_a_target_that_min_max_misfits() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(20, 16, generator=g)
    w[:, 0] = 8.0  # one outlier per row stretches the min/max range
    target = w.clone()
    target[:, 0] = 0.0  # ...which the task does not need
    fq = FakeQuantEmbedding.from_float(w, bits=4)
    before = ((fq(torch.arange(20)) - target) ** 2).mean().item()
    _fit(fq, target, steps=80)
    after = ((fq(torch.arange(20)) - target) ** 2).mean().item()
    assert after < before


def test_export_reproduces_the_fake_quant_forward() -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randn(25, 9, generator=g)
    for per_row in (True, False):
        fq = FakeQuantEmbedding.from_float(w, bits=4, per_row=per_row)
        _fit(fq, w * 0.7, steps=10)
        q = fq.to_quantized()
        idx = torch.arange(25)
        with torch.no_grad():
            assert torch.allclose(q(idx), fq(idx), atol=1e-5)
        assert q.codes.shape == (25, 5)


def test_per_table_granularity_has_one_parameter() -> None:
    fq = FakeQuantEmbedding.from_float(torch.randn(10, 8), bits=8, per_row=False)
    assert fq.scale.shape == (1, 1) and fq.offset.shape == (1, 1)
    assert fq(torch.arange(10)).shape == (10, 8)
