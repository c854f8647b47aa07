"""`cinerec.features.items`: the train-fitted item encoder and the derived columns."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from cinerec.errors import ConfigError
from cinerec.features.items import GROUPS, OPTIONAL_GROUPS, ItemEncoder, add_derived_columns


def _table(**extra: list) -> pl.DataFrame:
    """Five movies in the item-table format; items 0-3 are the "train" movies in
    most tests, item 4 is held out and carries extreme values everywhere."""
    base = {
        "item": [0, 1, 2, 3, 4],
        "movieId": [11, 21, 31, 41, 51],
        "title": ["Alpha (1990)", "Beta (2000)", "Gamma", "Delta (2010)", "Omega (1800)"],
        "year": [1990, 2000, None, 2010, 1800],
        "genres": [["Drama"], ["Comedy", "Drama"], None, [], ["Horror"]],
    }
    base.update(extra)
    return pl.DataFrame(base, strict=False)


TMDB = {
    "tmdb_budget": [0.0, 100.0, 1000.0, None, 1e12],
    "tmdb_original_language": ["en", "fr", "en", None, "xx"],
    "tmdb_production_countries": [["US"], ["FR", "US"], ["US"], None, ["ZZ"]],
}
FIT = np.array([0, 1, 2, 3])


def _col(enc: ItemEncoder, x: np.ndarray, name: str) -> np.ndarray:
    return x[:, enc.names.index(name)]


def _numeric(enc: ItemEncoder, column: str):
    (c,) = [n for n in enc.numeric if n.column == column]
    return c


# ---- groups ---------------------------------------------------------------------------
def test_groups_and_optional_groups_are_consistent() -> None:
    assert {"genres", "year", "tags", "tmdb", "imdb"} <= set(GROUPS)
    assert set(OPTIONAL_GROUPS) <= set(GROUPS)
    assert "tmdb" not in OPTIONAL_GROUPS and "imdb" not in OPTIONAL_GROUPS
    with pytest.raises(ConfigError, match="unknown item feature group"):
        ItemEncoder.fit(_table(), FIT, ("genres", "plot"))
    with pytest.raises(ConfigError, match="scaler"):
        ItemEncoder.fit(_table(), FIT, ("year",), scaler="robust")  # type: ignore[arg-type]


def test_tmdb_group_without_tmdb_columns_is_a_helpful_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        ItemEncoder.fit(_table(), FIT, ("genres", "tmdb"))
    msg = str(e.value)
    assert "'tmdb'" in msg and "tmdb_budget" in msg
    assert "with_metadata" in msg  # says how to get the columns
    with pytest.raises(ConfigError, match="imdb"):
        ItemEncoder.fit(_table(), FIT, ("imdb",))


def test_absent_optional_group_is_skipped() -> None:
    items = _table()  # no tags column
    enc = ItemEncoder.fit(items, FIT, ("genres", "tags"))
    assert enc.multihot and all(m.column != "tags" for m in enc.multihot)
    assert not any(n.startswith("tags") for n in enc.names)
    no_year = items.drop("year")
    enc2 = ItemEncoder.fit(no_year, FIT, ("year", "genres"))
    assert enc2.numeric == [] and enc2.transform(no_year).shape == (5, enc2.n_features)


def test_no_fit_item_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no item to fit"):
        ItemEncoder.fit(_table(), np.array([99]), ("genres",))


# ---- the train-only rule --------------------------------------------------------------
@pytest.mark.parametrize("scaler", ["minmax", "standard"])
def test_scaler_statistics_are_fitted_on_fit_items_only(scaler: str) -> None:
    items = _table(**TMDB)
    enc = ItemEncoder.fit(items, FIT, ("year", "tmdb"), scaler=scaler)  # type: ignore[arg-type]
    # The held-out movie 4 gets extreme values; changing them changes no statistic.
    other = items.with_columns(
        pl.when(pl.col("item") == 4).then(pl.lit(-5e6)).otherwise(pl.col("year")).alias("year"),
        pl.when(pl.col("item") == 4)
        .then(pl.lit(3.0))
        .otherwise(pl.col("tmdb_budget"))
        .alias("tmdb_budget"),
    )
    enc_other = ItemEncoder.fit(other, FIT, ("year", "tmdb"), scaler=scaler)  # type: ignore[arg-type]
    assert enc.to_json() == enc_other.to_json()
    # ... and they are the fit items' own statistics, computed here by hand.
    year = _numeric(enc, "year")
    fit_years = np.array([1990.0, 2000.0, 2010.0])
    filled = np.array([1990.0, 2000.0, 2000.0, 2010.0])  # item 2's missing year -> median
    assert year.median == pytest.approx(np.median(fit_years))
    if scaler == "minmax":
        assert (year.lo, year.scale) == pytest.approx((1990.0, 20.0))
    else:
        assert (year.lo, year.scale) == pytest.approx((filled.mean(), filled.std()))
    budget = _numeric(enc, "tmdb_budget")
    logs = np.log1p([100.0, 1000.0])  # item 0's zero and item 3's null are missing
    assert budget.median == pytest.approx(np.median(logs))
    if scaler == "minmax":
        assert (budget.lo, budget.scale) == pytest.approx((logs.min(), logs.max() - logs.min()))
    # The held-out movie is still encoded, outside the train range.
    x = enc.transform(items)
    assert x.shape == (5, enc.n_features) and np.isfinite(x).all()
    if scaler == "minmax":
        assert _col(enc, x, "year")[4] == pytest.approx((1800 - 1990) / 20)
        assert _col(enc, x, "tmdb_budget")[4] == pytest.approx(
            (np.log1p(1e12) - logs.min()) / (logs.max() - logs.min()), rel=1e-5
        )
        assert _col(enc, x, "tmdb_budget")[4] > 1.0 and _col(enc, x, "year")[4] < 0.0


def test_fitting_on_more_items_changes_the_statistics() -> None:
    # The counter-check of the rule above: item 4 does shape the scaler when it is a fit item.
    items = _table(**TMDB)
    a = _numeric(ItemEncoder.fit(items, FIT, ("year",)), "year")
    b = _numeric(ItemEncoder.fit(items, np.arange(5), ("year",)), "year")
    assert b.lo == 1800.0 and b.lo != a.lo and b.scale != a.scale


def test_missing_numbers_get_the_train_median_and_an_indicator() -> None:
    items = _table(**TMDB)
    enc = ItemEncoder.fit(items, FIT, ("year", "tmdb"))
    x = enc.transform(items)
    year, miss = _col(enc, x, "year"), _col(enc, x, "year:missing")
    assert miss.tolist() == [0, 0, 1, 0, 0]
    assert year[2] == pytest.approx((2000 - 1990) / 20)  # the median year 2000, scaled
    # TMDB's zero budget means "not recorded": missing like a null.
    bmiss = _col(enc, x, "tmdb_budget:missing")
    assert bmiss.tolist() == [1, 0, 0, 1, 0]
    budget = _numeric(enc, "tmdb_budget")
    filled = (budget.median - budget.lo) / budget.scale
    assert _col(enc, x, "tmdb_budget")[[0, 3]] == pytest.approx([filled, filled])
    # A frame without the column at all: every row missing, every value the median.
    new = enc.transform(_table().drop("year"))
    assert _col(enc, new, "year:missing").tolist() == [1] * 5
    assert _col(enc, new, "tmdb_budget:missing").tolist() == [1] * 5
    assert _col(enc, new, "year") == pytest.approx([0.5] * 5)


def test_categories_unseen_is_other_and_null_is_unknown() -> None:
    items = _table(**TMDB)
    enc = ItemEncoder.fit(items, FIT, ("tmdb",))
    (lang,) = [c for c in enc.categorical if c.column == "tmdb_original_language"]
    assert lang.categories == ["en", "fr"]  # most frequent first; null is not a category
    x = enc.transform(items)
    cols = ["tmdb_original_language=" + v for v in ("en", "fr", "other", "unknown")]
    block = np.stack([_col(enc, x, c) for c in cols], 1)
    assert block.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    # A list column uses its first element: FR for item 1; ZZ is unseen; null unknown.
    countries = ["tmdb_production_countries=" + v for v in ("US", "FR", "other", "unknown")]
    block = np.stack([_col(enc, x, c) for c in countries], 1)
    assert block.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    # One-hot: every categorical block has exactly one 1 per row.
    assert block.sum(1).tolist() == [1] * 5


def test_multi_hot_vocabulary_comes_from_fit_items() -> None:
    items = _table()
    enc = ItemEncoder.fit(items, FIT, ("genres",))
    (m,) = enc.multihot
    assert m.vocabulary == ["Comedy", "Drama"]  # Horror is only on held-out item 4
    assert enc.names == ["genres=Comedy", "genres=Drama", "genres:missing"]
    x = enc.transform(items)
    # item 4 (Horror only) has genres but none known: no 1 in the vocabulary, not missing
    assert x.tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]]
    enc_all = ItemEncoder.fit(items, np.arange(5), ("genres",))
    assert enc_all.multihot[0].vocabulary == ["Comedy", "Drama", "Horror"]


def test_names_match_the_transform_width() -> None:
    items = add_derived_columns(
        _table(**TMDB),
        pl.DataFrame({"item": [0, 1, 1, 4], "tag": ["Funny", "dark", "funny", "odd"]}),
    )
    for groups in [("genres",), ("year",), ("tmdb",), ("genres", "year", "tags", "tmdb")]:
        enc = ItemEncoder.fit(items, FIT, groups)
        x = enc.transform(items)
        assert x.dtype == np.float32
        assert x.shape == (items.height, len(enc.names)) == (5, enc.n_features)
        assert len(set(enc.names)) == len(enc.names)
    # one new movie, in a frame with only some of the columns
    one = pl.DataFrame({"item": [0], "title": ["New"], "genres": [["Drama", "Western"]]})
    assert enc.transform(one).shape == (1, enc.n_features)


def test_json_round_trip_gives_identical_transforms() -> None:
    items = add_derived_columns(
        _table(**TMDB),
        pl.DataFrame({"item": [0, 1, 1, 4], "tag": ["Funny", "dark", "funny", "odd"]}),
    )
    for scaler in ("minmax", "standard"):
        enc = ItemEncoder.fit(items, FIT, ("genres", "year", "tags", "tmdb"), scaler=scaler)  # type: ignore[arg-type]
        text = json.dumps(enc.to_json())  # plain JSON
        back = ItemEncoder.from_json(json.loads(text))
        assert back.names == enc.names and back.groups == enc.groups and back.scaler == scaler
        np.testing.assert_array_equal(back.transform(items), enc.transform(items))
    with pytest.raises(ConfigError, match="malformed"):
        ItemEncoder.from_json({"groups": ["genres"], "scaler": "minmax"})


# ---- derived columns ------------------------------------------------------------------
def test_add_derived_columns_builds_tags_and_release_year() -> None:
    items = _table(
        tmdb_release_date=[
            dt.date(1995, 5, 17),
            None,
            dt.date(2003, 1, 1),
            dt.date(1999, 12, 31),
            None,
        ]
    )
    assert items.schema["tmdb_release_date"] == pl.Date
    tags = pl.DataFrame({
        "user": [1, 2, 3, 1, 2],
        "item": [0, 0, 0, 2, 2],
        "tag": ["Funny", "funny ", "Dark", "Pixar", "pixar"],
    })  # fmt: skip
    out = add_derived_columns(items, tags)
    assert out.height == items.height and out.get_column("item").to_list() == [0, 1, 2, 3, 4]
    assert out.get_column("tmdb_release_year").to_list() == [1995, None, 2003, 1999, None]
    got = dict(zip(out.get_column("item").to_list(), out.get_column("tags").to_list(), strict=True))
    assert sorted(got[0]) == ["dark", "funny"]  # lower-cased, stripped, unique
    assert got[2] == ["pixar"]
    assert got[1] is None and got[3] is None  # no tag applications
    # the encoder reads both: a tags multi-hot and the release year as a TMDB number
    enc = ItemEncoder.fit(out.with_columns(tmdb_budget=pl.lit(1.0)), FIT, ("tags", "tmdb"))
    assert "tags=funny" in enc.names and "tags:missing" in enc.names
    assert "tmdb_release_year" in enc.names
    # nothing to derive: unchanged; an existing tags column is kept
    assert add_derived_columns(_table()).columns == _table().columns
    again = add_derived_columns(out, pl.DataFrame({"item": [1], "tag": ["new"]}))
    assert again.get_column("tags").to_list() == out.get_column("tags").to_list()


def test_pipe_separated_genres_fit_like_a_list_column() -> None:
    as_list = _table(genres=[["Drama"], ["Comedy", "Drama"], None, None, ["Horror"]])
    as_text = as_list.with_columns(pl.col("genres").list.join("|").alias("genres"))
    assert as_text.schema["genres"] == pl.String
    enc_list = ItemEncoder.fit(as_list, FIT, ("genres",))
    enc_text = ItemEncoder.fit(as_text, FIT, ("genres",))
    assert enc_text.names == enc_list.names  # ["genres=Comedy", "genres=Drama", "genres:missing"]
    np.testing.assert_array_equal(enc_text.transform(as_text), enc_list.transform(as_list))
