"""NCF: paper 002's architecture, its preset, the attention explanation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cinerec.artifacts import load_model, save_model
from cinerec.errors import ConfigError
from cinerec.models.explain import ScoreShares
from cinerec.models.registry import create_model
from cinerec.models.torch.ncf import NCF, PAPER_PRESET
from tests.conftest import make_ratings_dataset

FAST = {"epochs": 3, "batch_size": 64}


@pytest.fixture(scope="module")
def data():
    return make_ratings_dataset(n_users=50, n_items=30, density=0.4, seed=1)


@pytest.fixture(scope="module")
def paper_net(data) -> NCF:
    """Full-size paper network (128-d), one short epoch."""
    return NCF(FAST, epochs=1).fit(data)


def test_architecture_matches_paper_section_4(paper_net: NCF) -> None:
    m = paper_net.module_
    assert m.user_emb.embedding_dim == 128 and m.item_emb.embedding_dim == 128
    linears = [x for x in m.mlp if isinstance(x, nn.Linear)]
    assert [(x.in_features, x.out_features) for x in linears] == [
        (256, 512), (512, 256), (256, 128), (128, 64)
    ]
    assert [x.p for x in m.mlp if isinstance(x, nn.Dropout)] == [0.3, 0.2, 0.2, 0.1]
    assert [x.num_features for x in m.mlp if isinstance(x, nn.BatchNorm1d)] == [512, 256, 128, 64]
    kinds = [type(x).__name__ for x in m.mlp]
    assert kinds[:4] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]  # BN after each dense layer
    assert m.out.in_features == 64 and m.out.out_features == 1
    assert m.attention is None  # section 6's attention is optional, off by default


def test_xavier_initialisation(data) -> None:
    model = NCF(FAST | {"epochs": 0}).fit(data, options={"progress": False})
    module = model.build_module()  # a fresh one, as fit builds it
    for lin in [x for x in module.mlp if isinstance(x, nn.Linear)] + [module.out]:
        bound = math.sqrt(6.0 / (lin.in_features + lin.out_features))
        w = lin.weight.detach()
        assert w.abs().max() <= bound + 1e-7
        assert w.std() > 0.5 * bound / math.sqrt(3)  # uniform(-b, b) has std b / sqrt(3)
        assert torch.all(lin.bias == 0)


def test_output_in_rating_range(paper_net: NCF, data) -> None:
    m = paper_net.module_
    u = torch.arange(data.n_users).repeat(data.n_items)
    i = torch.arange(data.n_items).repeat_interleave(data.n_users)
    with torch.no_grad():
        # Push embeddings far out: the sigmoid still bounds the output.
        out = m.rating_min + m.rating_span * m.parts(m.user_emb(u) * 50, m.item_emb(i) * 50)[0]
    assert out.min() >= 0.5 and out.max() <= 5.0


def test_paper_preset_values() -> None:
    p = NCF.paper_preset()
    assert p["epochs"] == 10 and p["batch_size"] == 64 and p["lr"] == 1e-3
    assert p["schedule"] == "plateau" and p["plateau_factor"] == 0.5 and p["plateau_patience"] == 2
    assert p["early_stopping_patience"] is None and p["optimizer"] == "adam"
    cfg = NCF({"preset": "paper", "epochs": 99}).config  # the preset wins
    assert all(getattr(cfg, k) == v for k, v in PAPER_PRESET.items())
    default = NCF().config
    assert default.early_stopping_patience is not None and default.schedule == "plateau"


def test_attention_weights_sum_to_one_and_strength_in_unit_range(data) -> None:
    model = create_model("ncf", FAST, attention=True, embedding_dim=16).fit(data)
    assert model.module_.attention is not None
    u = torch.arange(data.n_users).repeat(3)
    i = torch.arange(data.n_users * 3) % data.n_items
    with torch.no_grad():
        strength, w = model.module_.parts(model.module_.user_emb(u), model.module_.item_emb(i))
    assert torch.allclose(w.sum(-1), torch.ones(len(u)), atol=1e-6)
    assert (w >= 0).all() and (strength >= 0).all() and (strength <= 1).all()
    ex = model.explain(int(data.users[0]), int(data.items[0]))
    assert isinstance(ex, ScoreShares) and ex.method == "attention"
    assert ex.user_share + ex.item_share == pytest.approx(1.0)
    # strength is the prediction rescaled from the rating scale to [0, 1]
    pred = model.predict(np.array([data.users[0]]), np.array([data.items[0]]))[0]
    lo, hi = data.rating_scale
    assert lo + ex.strength * (hi - lo) == pytest.approx(float(pred), abs=1e-3)
    assert 0.0 <= ex.strength <= 1.0


def test_explain_without_attention_and_in_recommend(paper_net: NCF, data) -> None:
    ex = paper_net.explain(3, int(paper_net.seen_items(3)[0]))
    assert isinstance(ex, ScoreShares) and ex.method == "gradient_x_input"
    assert ex.user_share + ex.item_share == pytest.approx(1.0)
    assert 0 <= ex.user_share <= 1 and 0 <= ex.strength <= 1
    assert "your taste" in ex.to_text() and ex.to_dict()["kind"] == "score_shares"
    assert paper_net.explain(-1, 0) is None
    rec = paper_net.recommend(3, k=3)
    assert all(isinstance(e, ScoreShares) for e in rec.explanations)


def test_fit_beats_mean_and_round_trips(tmp_path) -> None:
    d = make_ratings_dataset(n_users=80, n_items=40, density=0.4, seed=2, noise=0.2)
    mask = np.random.default_rng(0).random(d.n_ratings) < 0.2
    train, test = d.subset(~mask), d.subset(mask)
    model = create_model("ncf", FAST, epochs=10, embedding_dim=16).fit(train)
    mean = create_model("mean").fit(train)
    rmse = np.sqrt(np.mean((model.predict(test.users, test.items) - test.ratings) ** 2))
    base = np.sqrt(np.mean((mean.predict(test.users, test.items) - test.ratings) ** 2))
    assert rmse < base
    save_model(model, tmp_path / "ncf")
    loaded = load_model(tmp_path / "ncf")
    np.testing.assert_array_equal(loaded.predict(test.users, test.items), model.predict(test.users, test.items))
    np.testing.assert_array_equal(loaded.score(np.arange(5)), model.score(np.arange(5)))


def test_invalid_layers_dropout_is_config_error() -> None:
    with pytest.raises(ConfigError):
        NCF(layers=(64, 32), dropout=(0.1,))


def test_full_catalogue_scoring_equals_the_per_pair_network() -> None:
    """`score` splits the first layer into user and item halves; same numbers."""
    d = make_ratings_dataset(n_users=40, n_items=70, seed=5)
    model = create_model("ncf", embedding_dim=8, layers=(16, 8), dropout=(0.1, 0.1), epochs=2).fit(d)
    module = model._module().eval()
    users = np.arange(10)
    with torch.no_grad():
        uu = torch.as_tensor(users).repeat_interleave(d.n_items)
        ii = torch.arange(d.n_items).repeat(len(users))
        pairs = module(uu, ii).view(len(users), -1).numpy()
    np.testing.assert_allclose(model.score(users), pairs, rtol=1e-5, atol=1e-5)


def test_cached_inference_parts_follow_weight_changes() -> None:
    """The folded layers / item half are reused between calls and rebuilt after any change."""
    d = make_ratings_dataset(n_users=30, n_items=40, seed=6)
    model = create_model("ncf", embedding_dim=8, layers=(16, 8), dropout=(0.1, 0.1), epochs=1).fit(d)
    users = np.arange(5)
    first = model.score(users)
    parts = model._inference_cache[1]
    model.score(users)
    assert model._inference_cache[1] is parts  # reused
    model.finetune(d, epochs=1, lr=0.05, early_stopping_patience=None, validate_start=False)
    module = model._module().eval()
    with torch.no_grad():
        uu = torch.as_tensor(users).repeat_interleave(d.n_items)
        ii = torch.arange(d.n_items).repeat(len(users))
        pairs = module(uu, ii).view(len(users), -1).numpy()
    after = model.score(users)
    assert not np.allclose(after, first)
    np.testing.assert_allclose(after, pairs, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # an in-place edit of the BatchNorm statistics is seen too
        module.mlp[1].running_mean += 1.0
    assert not np.allclose(model.score(users), after)
