"""Sequences and the sequence batch source: order, windows, targets, negatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinerec.errors import ConfigError
from cinerec.train.sequences import SequenceBatches, Sequences, gap_tokens, rating_tokens

SCALE = (0.5, 5.0)


def _seqs(lengths: list[int], seed: int = 0) -> tuple[Sequences, list[np.ndarray]]:
    """Users with the given lengths; user u's items, in time order, are ``truth[u]``
    (items 100 u .. 100 u + 99: an item tells whose it is)."""
    rng = np.random.default_rng(seed)
    truth = [100 * u + rng.permutation(100)[:n] for u, n in enumerate(lengths)]
    rows = np.repeat(np.arange(len(lengths)), lengths)
    items = np.concatenate(truth)
    ts = np.concatenate([np.sort(rng.choice(10**6, n, replace=False)) for n in lengths])
    shuffle = rng.permutation(rows.shape[0])  # input order must not matter
    seqs = Sequences.from_rows(rows[shuffle], items[shuffle], np.full(rows.shape[0], 4.0)[shuffle],
                               ts[shuffle], len(lengths), SCALE)
    return seqs, truth


def test_sequences_are_in_time_order_with_ties_in_input_order():
    seqs, truth = _seqs([5, 0, 7])
    for u, t in enumerate(truth):
        got = seqs.items[seqs.indptr[u] : seqs.indptr[u + 1]] - 1
        np.testing.assert_array_equal(got, t)
    tied = Sequences.from_rows(np.zeros(3), np.array([4, 2, 9]), np.ones(3), np.zeros(3, np.int64), 1, SCALE)
    np.testing.assert_array_equal(tied.items - 1, [4, 2, 9])


def test_windows_are_the_latest_items_left_padded():
    seqs, truth = _seqs([3, 8])
    w = seqs.windows(np.array([0, 1]), 5)
    np.testing.assert_array_equal(w["items"][0].numpy(), [0, 0, *(truth[0] + 1)])
    np.testing.assert_array_equal(w["items"][1].numpy(), truth[1][-5:] + 1)
    assert (w["ratings"][0, :2] == 0).all() and (w["ratings"][0, 2:] > 0).all()


def test_rating_and_gap_tokens():
    np.testing.assert_array_equal(rating_tokens(np.array([0.5, 1.0, 4.5, 5.0]), SCALE), [1, 2, 9, 10])
    seqs = Sequences.from_rows(np.zeros(3), np.arange(3), np.array([3.5, 0.5, 5.0]), None, 1, SCALE)
    np.testing.assert_array_equal(seqs.rating_values(SCALE), [3.5, 0.5, 5.0])
    indptr = np.array([0, 3, 5])
    g = gap_tokens(np.array([0, 0, 7, 100, 100 + 2**20]), indptr)
    assert g[0] == 2 and g[1] == 2 and g[2] == 2 + 3  # gap 7 s -> floor(log2 8) = 3
    assert g[3] == 2  # a new sequence starts at gap 0
    assert g[4] == 2 + 20
    assert (gap_tokens(None, indptr) == 1).all()


@pytest.mark.parametrize("max_len", [1, 3, 6, 50])
def test_each_epoch_predicts_every_target_once_from_its_past(max_len):
    seqs, truth = _seqs([1, 2, 9, 17, 30])
    source = SequenceBatches(seqs, max_len, batch_size=4)
    assert source.n_rows == sum(len(t) - 1 for t in truth)
    gen = torch.Generator().manual_seed(0)
    layouts = []
    for epoch in range(3):
        seen = []
        for batch in source.batches(epoch, gen):
            items, mask = batch["items"], batch["mask"]
            assert items.shape[1] == max_len + 1 and mask.shape == (items.shape[0], max_len)
            for r, c in zip(*np.nonzero(mask.numpy()), strict=True):
                target, inputs = int(items[r, c + 1]) - 1, items[r, : c + 1].numpy()
                context = inputs[inputs > 0] - 1
                t = truth[target // 100]
                at = int(np.flatnonzero(t == target)[0])
                assert 1 <= len(context) <= at
                np.testing.assert_array_equal(t[at - len(context) : at], context)
                seen.append(target)
        assert len(seen) == len(set(seen)) == source.n_rows
        layouts.append(sorted(seen))
    assert layouts[0] == layouts[1] == layouts[2]


def test_contexts_change_between_epochs_and_runs_repeat():
    seqs, _ = _seqs([60, 45])
    source = SequenceBatches(seqs, 10, batch_size=100)

    def windows(seed: int) -> list[np.ndarray]:
        gen = torch.Generator().manual_seed(seed)
        return [next(source.batches(e, gen))["items"].numpy() for e in range(3)]

    a, b = windows(1), windows(1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(a[0].shape != w.shape or not np.array_equal(a[0], w) for w in a[1:])


def test_target_filter_and_negatives():
    seqs, truth = _seqs([20, 20])
    ok = np.zeros(40, dtype=bool)
    ok[::2] = True
    counts = np.zeros(200)
    counts[[3, 5]] = [1, 4]
    source = SequenceBatches(seqs, 8, 16, target_ok=ok, n_negatives=5, per_position=True,
                             item_counts=counts, negative_alpha=1.0)
    assert source.n_rows == int((ok & ~np.isin(np.arange(40), seqs.indptr[:-1])).sum())
    gen = torch.Generator().manual_seed(0)
    batches = list(source.batches(0, gen))
    assert sum(int(b["mask"].sum()) for b in batches) == source.n_rows
    negs = torch.cat([b["negatives"].reshape(-1) for b in batches])
    assert set(negs.tolist()) <= {4, 6}  # item tokens of the only items with counts
    assert (negs == 6).float().mean() > 0.6  # 4x the count of item 3
    shared = SequenceBatches(seqs, 8, 16, n_negatives=7, item_counts=np.ones(200))
    assert next(shared.batches(0, gen))["negatives"].shape == (7,)
    with pytest.raises(ConfigError):
        SequenceBatches(seqs, 0, 16)
    with pytest.raises(ConfigError):
        SequenceBatches(seqs, 8, 16, n_negatives=3, item_counts=np.zeros(200))


def test_sharded_ranks_split_every_batch():
    seqs, _ = _seqs([30, 25, 12])
    source = SequenceBatches(seqs, 5, batch_size=6)
    whole = list(source.batches(0, torch.Generator().manual_seed(3)))
    parts = [list(source.sharded(r, 2).batches(0, torch.Generator().manual_seed(3))) for r in range(2)]
    assert sum(int(b["mask"].sum()) for p in parts for b in p) == sum(int(b["mask"].sum()) for b in whole)
