"""Candidate retrieval: retrieval spaces, exact and faiss indexes, candidates, recall."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from cinerec.compress.api import compress_model
from cinerec.errors import ConfigError
from cinerec.models.base import Recommender
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model, model_class
from cinerec.models.retrieval import RetrievalSpace
from cinerec.serving.index import (
    KINDS,
    ExactRetriever,
    build_index,
    candidates,
    recall_at_k,
    space_of,
    vector_recall,
)
from tests.conftest import make_ratings_dataset

QUIET = {"progress": False}
CONFIGS = {
    "svd": {"n_factors": 12, "epochs": 12},
    "svdpp": {"n_factors": 8, "epochs": 5},
    "als": {"n_factors": 12, "epochs": 5},
    "ials": {"n_factors": 12, "epochs": 5},
    "mf-torch": {"n_factors": 8, "epochs": 4, "batch_size": 256},
}


@pytest.fixture(scope="module")
def data():
    return make_ratings_dataset(n_users=150, n_items=300, density=0.08, seed=5)


@pytest.fixture(scope="module")
def models(data):
    return {name: create_model(name, cfg).fit(data, options=QUIET) for name, cfg in CONFIGS.items()}


def _mixed_queries(model, data) -> list[Query]:
    """Known users (some risk-averse, some with exclusions), new visitors, a known user
    with fresh feedback, an unknown user."""
    users = np.arange(0, data.n_users, 3)
    qs = [Query(user=int(u), risk_aversion=float(u % 4) * 0.5) for u in users]
    qs.append(Query(user=4, exclude=np.array([1, 2, 3]), exclude_seen=False))
    qs += [Query(history=model.train_history(int(u))) for u in (1, 8, 20)]
    qs.append(Query(user=7, history=History(np.array([10, 11, 12]), np.array([5.0, 4.5, 1.0]))))
    qs.append(Query(user=-1))
    return qs


def _same_lists(model, queries, retriever, n: int, k: int = 10) -> list[bool]:
    found = candidates(model, queries, retriever, n)
    via = model.recommend_batch([dataclasses.replace(q, candidates=c) for q, c in zip(queries, found, strict=True)], k, explain=False)
    exact = model.recommend_batch(queries, k, explain=False)
    return [np.array_equal(a.items, b.items) for a, b in zip(via, exact, strict=True)]


# ---- the retrieval space ranks like the model ---------------------------------------------
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_space_inner_products_differ_from_scores_by_a_per_user_constant(models, data, name: str) -> None:
    model = models[name]
    space = model.retrieval_space()
    ids = space.ids()
    users = np.arange(10)
    gap = model.score(users)[:, ids] - space.query_vectors(users=users) @ space.index_vectors().T
    assert np.ptp(gap, axis=1).max() < 1e-4
    # folded-in histories too, and risk aversion is the sigma coordinate
    histories = [model.train_history(u) for u in (2, 3)]
    folded = model._fold_in(histories)
    lam = np.array([0.0, 1.5], dtype=np.float32)
    ip = space.query_vectors(folded=folded, risk_aversion=lam) @ space.index_vectors().T
    want = np.asarray(model._score_folded(folded))[:, ids] - lam[:, None] * model.item_sigma_[ids][None, :]
    assert np.ptp(want - ip, axis=1).max() < 1e-4


def test_items_without_training_ratings_are_not_indexed() -> None:
    d = make_ratings_dataset(n_users=40, n_items=30, density=0.3, seed=2)
    train = d.subset(d.items != 5)
    model = create_model("svd", CONFIGS["svd"]).fit(train, options=QUIET)
    space = model.retrieval_space()
    assert 5 not in space.ids() and space.ids().shape == (space.n_items - 1,)
    found = build_index(space).search(space.query_vectors(users=np.arange(40)), 30)
    assert 5 not in found and (found[:, -1] == -1).all()


@pytest.mark.parametrize("name", ["ease", "item-knn", "user-knn"])
def test_models_without_a_space_say_so(data, name: str) -> None:
    model = create_model(name).fit(data, options=QUIET)
    assert model.retrieval_space() is None
    with pytest.raises(ConfigError, match="no retrieval space.*exact scoring"):
        build_index(model, "hnsw")
    with pytest.raises(ConfigError, match="no retrieval space"):
        space_of(model)


@pytest.mark.parametrize("name", ["ncf", "autorec", "bias", "popular"])
def test_other_model_classes_keep_the_default_none(name: str) -> None:
    assert model_class(name).retrieval_space is Recommender.retrieval_space


# ---- exact retrieval gives the model's own lists --------------------------------------------
@pytest.mark.parametrize("kind", ["exact", "flat"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_exact_candidates_give_the_models_own_top_k(models, data, name: str, kind: str) -> None:
    model = models[name]
    retriever = build_index(model, kind)
    queries = _mixed_queries(model, data)
    assert all(_same_lists(model, queries, retriever, n=20))


@pytest.mark.parametrize(("name", "method"), [("svd", "int8"), ("mf-torch", "int8"), ("ials", "int4")])
def test_exact_candidates_of_a_compressed_model(data, name: str, method: str) -> None:
    model = create_model(name, CONFIGS[name]).fit(data, options=QUIET)
    before = model.retrieval_space().items
    compress_model(model, method)
    space = model.retrieval_space()
    # the index holds the decoded (compressed) vectors, not the fp32 ones
    decoded = model._item_vectors()  # the model's own decoding of its item table
    np.testing.assert_allclose(space.items[:, : decoded.shape[1]], decoded, atol=1e-6)
    assert not np.allclose(space.items, before)
    assert all(_same_lists(model, _mixed_queries(model, data), build_index(space), n=20))


def test_candidates_exclude_seen_and_still_return_n(models, data) -> None:
    model = models["svd"]
    heavy = int(np.argmax(data.user_counts))
    queries = [Query(user=heavy), Query(user=heavy, exclude_seen=False), Query(history=model.train_history(heavy))]
    for kind in ("exact", "hnsw"):
        got = candidates(model, queries, build_index(model, kind), n=15)
        seen = model.seen_items(heavy)
        assert got[0].shape == (15,) and not np.isin(got[0], seen).any()
        assert got[2].shape == (15,) and not np.isin(got[2], seen).any()
        assert got[1].shape == (15,) and np.isin(got[1], seen).any()  # seen items rank high
        assert len(np.unique(got[0])) == 15


def test_candidates_keep_given_lists_and_rank_fallbacks_exactly(models, data) -> None:
    model = models["als"]
    given = np.array([5, 9, 40])
    got = candidates(model, [Query(user=3, candidates=given), Query(user=-1), 2], build_index(model, "exact"), n=12)
    np.testing.assert_array_equal(got[0], given)
    fallback = model.recommend(Query(user=-1), k=12)
    np.testing.assert_array_equal(got[1], fallback.items)
    np.testing.assert_array_equal(got[2], candidates(model, [Query(user=2)], build_index(model), n=12)[0])


def test_an_index_of_another_catalogue_is_refused(models) -> None:
    other = create_model("svd", CONFIGS["svd"]).fit(make_ratings_dataset(n_users=30, n_items=20, seed=1), options=QUIET)
    with pytest.raises(ConfigError, match="rebuild the index"):
        candidates(models["svd"], [Query(user=1)], build_index(other), n=5)


# ---- search contract -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_search_shape_padding_and_order(models, kind: str) -> None:
    space = models["ials"].retrieval_space()
    params = {"nlist": 2, "nbits": 2, "nprobe": 2} if kind == "ivfpq" else {}
    retriever = build_index(space, kind, **params)
    assert retriever.kind == kind and retriever.nbytes() > 0
    q = space.query_vectors(users=np.arange(4))
    found = retriever.search(q, space.n_items + 7)
    assert found.shape == (4, space.n_items + 7) and found.dtype == np.int64
    assert (found[:, -7:] == -1).all()
    top = retriever.search(q, 5)
    ip = np.take_along_axis(q @ space.index_vectors().T, np.maximum(top, 0), axis=1)
    if kind in ("exact", "flat"):
        assert (np.diff(ip, axis=1) <= 1e-6).all()
        np.testing.assert_array_equal(top, ExactRetriever(space).search(q, 5))
    with pytest.raises(ConfigError, match="shape"):
        retriever.search(q[:, :-1], 5)
    with pytest.raises(ConfigError, match="n must be >= 1"):
        retriever.search(q, 0)


# ---- approximate indexes: recall -----------------------------------------------------------------
@pytest.fixture(scope="module")
def catalogue():
    """2,000 items: enough for IVF lists and 8-bit PQ codebooks."""
    d = make_ratings_dataset(n_users=400, n_items=2000, density=0.03, rank=6, seed=9)
    return d, create_model("svd", n_factors=24, epochs=15).fit(d, options=QUIET)


def test_hnsw_default_recall_is_high(catalogue) -> None:
    d, model = catalogue
    hnsw = build_index(model, "hnsw")
    assert hnsw.params == {"M": 32, "ef_construction": 200, "ef_search": 128}
    assert recall_at_k(model, hnsw, np.arange(d.n_users), k=10, n_candidates=50) >= 0.9


def test_ivfpq_recall_and_nprobe(catalogue) -> None:
    d, model = catalogue
    users = np.arange(d.n_users)
    ivf = build_index(model, "ivfpq")
    assert ivf.params["nlist"] == 45 and ivf.params["nbits"] == 5  # from 2,000 items
    assert recall_at_k(model, ivf, users, k=10, n_candidates=100) >= 0.8
    one = build_index(model, "ivfpq", nlist=40, nprobe=1)
    every = build_index(model, "ivfpq", nlist=40, nprobe=40)
    r_one = recall_at_k(model, one, users, n_candidates=30)
    r_every = recall_at_k(model, every, users, n_candidates=30)
    assert r_one < r_every
    # seeded: the same parameters give the same index
    again = build_index(model, "ivfpq", nlist=40, nprobe=1)
    q = model.retrieval_space().query_vectors(users=users[:20])
    np.testing.assert_array_equal(one.search(q, 30), again.search(q, 30))


def test_exact_recall_is_one_and_vector_recall_agrees(catalogue) -> None:
    d, model = catalogue
    flat = build_index(model, "flat")
    assert recall_at_k(model, flat, np.arange(50), k=10, n_candidates=10) == 1.0
    # risk-averse lists too: the search includes the sigma coordinate
    assert recall_at_k(model, flat, np.arange(50), k=10, n_candidates=10, risk_aversion=1.5) == 1.0
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 16))
    items = (centers[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 16))).astype(np.float32)
    space = RetrievalSpace(items, lambda users, folded: folded)
    queries = (centers[rng.integers(0, 20, 200)] + 0.3 * rng.normal(size=(200, 16))).astype(np.float32)
    assert vector_recall(build_index(space, "exact"), queries) == 1.0
    assert vector_recall(build_index(space, "hnsw"), queries) >= 0.9
    coarse = vector_recall(build_index(space, "ivfpq", nlist=50, m=2, nbits=4, nprobe=1), queries, n_candidates=10)
    assert coarse < 1.0  # an approximate index can miss; the measure shows it


# ---- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "params", "match"), [
    ("annoy", {}, "unknown index kind 'annoy'; choose one of exact, flat, hnsw, ivfpq"),
    ("exact", {"M": 8}, "'exact' takes no parameters; got M"),
    ("hnsw", {"nlist": 8}, "'hnsw' takes M, ef_construction, ef_search; got nlist"),
    ("hnsw", {"M": 1}, "hnsw M must be >= 2"),
    ("hnsw", {"ef_search": 0.5}, "hnsw ef_search must be"),
    ("ivfpq", {"nlist": 100}, r"nlist=100 needs at least 3900 items .* catalogue has 300; use nlist <= 7"),
    ("ivfpq", {"nlist": 2, "nbits": 9}, r"nbits=9 trains 512 centroids .* use nbits <= 8"),
    ("ivfpq", {"nlist": 4, "nprobe": 5}, "nprobe=5 exceeds nlist=4"),
    ("ivfpq", {"m": 999}, "ivfpq m must be <= 14"),
    ("ivfpq", {"seed": -1}, "ivfpq seed must be >= 0"),
])  # fmt: skip
def test_bad_kinds_and_parameters_are_refused(models, kind: str, params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_index(models["svd"], kind, **params)


def test_missing_faiss_is_a_clear_error(models, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an environment without it gives
    with pytest.raises(ConfigError, match=r"needs faiss.*cinerec\[serve\].*kind='exact'"):
        build_index(models["svd"], "hnsw")
    assert build_index(models["svd"], "exact").kind == "exact"  # no faiss needed
