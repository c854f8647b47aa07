"""The synthetic world: movies (ids, years, genres, titles, links, taste factors,
popularity) and users (activity windows, rating counts, biases, taste factors).

Everything global is drawn here once from the seed; ratings are then drawn per chunk
of users (`draw`). Vectorised numpy throughout; the one loop is the water-filling of
rating counts (at most 50 vectorised rounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from cinerec.data.synthetic.tables import (
    ADJ,
    AGE_BIAS,
    AGE_GENRE_TASTE,
    AGE_SHARE,
    COLLEGE,
    DAY,
    DEMO_FACTOR_SHARE,
    DEMO_MEAN_SHIFT,
    DEMO_SELECTION,
    FEMALE_BIAS,
    FEMALE_GENRE_TASTE,
    FEMALE_SHARE,
    GENRE_FREQ,
    GENRE_OFFSET,
    GENRE_SPREAD,
    GENRES,
    K12,
    MAX_USER_SHARE,
    MIN_USER_RATINGS,
    NOUN,
    OCCUPATION_SHARE,
    RANK,
    RETIRED,
    SD_FACTOR,
    SD_ITEM_BIAS,
    SD_OCCUPATION_TASTE,
    SD_USER_BIAS,
    year_ts,
)
from cinerec.errors import ConfigError


@dataclass
class World:
    """Everything that is global (items, users); ratings are drawn per user chunk."""

    n_items: int
    n_users: int
    t0: int
    t1: int
    movie_ids: np.ndarray  # int64, sorted, non-contiguous
    year: np.ndarray  # int32 release year
    release_ts: np.ndarray  # int64
    genre_mat: np.ndarray  # bool (n_items, 19)
    primary_genre: np.ndarray  # int (n_items,), -1 when no genre
    titles: np.ndarray  # str (n_items,), without the year
    imdb: np.ndarray
    tmdb: np.ndarray  # float64 with NaN for missing
    item_bias: np.ndarray
    item_spread: np.ndarray
    q: np.ndarray  # float32 (n_items, rank)
    # items in release order, and cumulative sampling mass per tempering level
    rel_order: np.ndarray
    rel_sorted: np.ndarray
    cum_mass: list[np.ndarray]
    # users
    counts: np.ndarray  # int64 ratings per user
    t_start: np.ndarray
    t_end: np.ndarray
    n_avail: np.ndarray  # movies released before the user's window ends
    user_bias: np.ndarray
    user_noise: np.ndarray
    half_star: np.ndarray  # bool: uses half stars once available
    tagger: np.ndarray  # bool
    p: np.ndarray  # float32 (n_users, rank)
    # demographics (only for the ml-100k / ml-1m formats; None otherwise)
    demo: Demographics | None = None


@dataclass
class Demographics:
    """Each user's age bucket, gender and occupation, and the taste they imply."""

    age_bucket: np.ndarray  # int8 (n_users,), index into tables.AGE_CODES
    female: np.ndarray  # bool (n_users,)
    occupation: np.ndarray  # int8 (n_users,), ml-1m occupation code 0-20
    genre_taste: np.ndarray  # float32 (n_users, 19): stars added per genre of a movie
    genre_weight: np.ndarray  # float32 (n_items, 19): a movie's genres, summing to 1
    factors: np.ndarray  # float32 (n_users, rank): the latent taste of their groups

    def affinity(self, users: np.ndarray, items: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Stars the user's demographics add to a movie (genre taste + group factors)."""
        genre = np.einsum("ij,ij->i", self.genre_weight[items], self.genre_taste[users])
        latent = np.einsum("ij,ij->i", self.factors[users], q[items]) * np.sqrt(DEMO_FACTOR_SHARE)
        return genre + latent

    def accept(self, users: np.ndarray, items: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Probability of keeping a (user, movie) candidate drawn by popularity: odds
        ``exp(DEMO_SELECTION * affinity)``, floored so every movie stays reachable."""
        a = self.affinity(users, items, q)
        return np.clip(np.exp(DEMO_SELECTION * (a - 1.0)), 0.05, 1.0)


# Popularity tempering per sampling round: heavy users exhaust the head and must reach
# the tail; flatter distributions in later rounds get there without huge over-draws.
TEMPER = (1.0, 0.85, 0.7, 0.5, 0.3, 0.0)


def make_world(
    n_ratings: int, n_users: int, n_items: int, seed: int, t0: int, t1: int, demographics: bool = False
) -> World:
    """Draw the world; ``demographics`` adds users' age, gender and occupation, makes
    their tastes depend on them and uses whole stars only (ml-100k / ml-1m). Without
    it, every draw (and so every byte of an ml-25m release) is what it always was."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7001]))
    end_year = datetime.fromtimestamp(t1 - 1, UTC).year

    # ---- items --------------------------------------------------------------
    # Ids with gaps (MovieLens ids run to ~209k for 62k movies).
    gaps = rng.geometric(0.45, n_items) + (rng.random(n_items) < 0.3) * rng.integers(1, 8, n_items)
    movie_ids = np.cumsum(gaps).astype(np.int64)
    # Release years: production grows ~exponentially over the century.
    first_year = 1902
    years_span = end_year - first_year + 1
    age = rng.exponential(22.0, n_items)
    year = (end_year - np.minimum(age, years_span - 1)).astype(np.int32)
    release_ts = np.array([year_ts(int(y)) for y in range(first_year, end_year + 1)], np.int64)[
        year - first_year
    ] + rng.integers(0, 365 * DAY, n_items)
    release_ts = np.minimum(release_ts, t1 - DAY)

    # Genres: 1-4 per movie, drawn without replacement by prior frequency (Gumbel top-k);
    # ~2% have none, as in ML-25M.
    n_g = len(GENRES)
    keys = np.log(GENRE_FREQ)[None, :] + rng.gumbel(size=(n_items, n_g))
    order = np.argsort(-keys, axis=1)
    k = np.minimum(1 + rng.geometric(0.55, n_items) - 1, 4)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n_g)[None, :].repeat(n_items, 0), axis=1)
    genre_mat = ranks < k[:, None]
    no_genre = rng.random(n_items) < 0.02
    genre_mat[no_genre] = False
    primary_genre = np.where(no_genre, -1, order[:, 0])

    n_gen = genre_mat.sum(1)
    denom = np.maximum(n_gen, 1)
    item_spread = np.where(n_gen > 0, (genre_mat @ GENRE_SPREAD) / denom, 1.0)
    genre_off = np.where(n_gen > 0, (genre_mat @ GENRE_OFFSET) / denom, 0.0)
    # Survivorship: the old movies still rated today are the good ones.
    age_off = np.clip((1990 - year) / 60.0, 0.0, 1.0) * 0.25
    item_bias = genre_off + age_off + rng.normal(0, SD_ITEM_BIAS, n_items)

    # Latent item factors share a genre component (so content features carry signal).
    genre_emb = rng.normal(0, 1, (n_g, RANK))
    gpart = (genre_mat @ genre_emb) / np.sqrt(denom)[:, None]
    q = (0.6 * gpart + 0.8 * rng.normal(0, 1, (n_items, RANK))) / np.sqrt(RANK)
    q *= SD_FACTOR * item_spread[:, None]

    # Popularity: Zipf over a rank that prefers good movies, damped for late releases
    # (they have had less time to collect ratings).
    pop_key = rng.gumbel(size=n_items) + 1.5 * item_bias / SD_ITEM_BIAS
    rank = np.empty(n_items, np.int64)
    rank[np.argsort(-pop_key)] = np.arange(1, n_items + 1)
    avail = np.clip((t1 - release_ts) / (t1 - t0), 0.05, 1.0)
    pop = rank.astype(np.float64) ** -1.15 * np.sqrt(avail)

    rel_order = np.argsort(release_ts, kind="stable")
    rel_sorted = release_ts[rel_order]
    cum_mass = [np.cumsum(pop[rel_order] ** b) for b in TEMPER]

    # Titles ("The X" is written "X, The" as MovieLens does), links.
    pattern = rng.integers(0, 4, n_items)
    a = np.asarray(ADJ)[rng.integers(0, len(ADJ), n_items)]
    n1 = np.asarray(NOUN)[rng.integers(0, len(NOUN), n_items)]
    n2 = np.asarray(NOUN)[rng.integers(0, len(NOUN), n_items)]
    t_the = np.char.add(np.char.add(np.char.add(a, " "), n1), ", The")
    t_of = np.char.add(np.char.add(n1, " of the "), n2)
    t_an = np.char.add(np.char.add(a, " "), n1)
    t_n = np.char.add(np.char.add(n1, " and the "), a)
    titles = np.select([pattern == 0, pattern == 1, pattern == 2], [t_the, t_of, t_an], t_n)
    sequel = rng.random(n_items) < 0.05
    titles = np.where(sequel, np.char.add(titles, " 2"), titles).astype(object)
    imdb = np.sort(rng.choice(np.arange(10_000, 9_999_999), n_items, replace=False))[
        rng.permutation(n_items)
    ].astype(np.int64)
    tmdb = rng.choice(np.arange(2, 700_000), n_items, replace=False).astype(np.float64)
    tmdb[rng.random(n_items) < 0.002] = np.nan

    # ---- users ----------------------------------------------------------------
    urng = np.random.default_rng(np.random.SeedSequence([seed, 7002]))
    # Active window: ~45% rate everything in one sitting, the rest over months/years.
    t_start = t0 + (urng.random(n_users) * (t1 - t0 - DAY)).astype(np.int64)
    one_session = urng.random(n_users) < 0.45
    span = np.where(
        one_session,
        urng.exponential(2 * 3600.0, n_users),
        np.exp(urng.normal(np.log(150 * DAY), 1.4, n_users)),
    ).astype(np.int64)
    t_end = np.minimum(t_start + np.maximum(span, 60), t1 - 1)
    n_avail = np.searchsorted(rel_sorted, t_end, side="right").astype(np.int64)

    counts = allocate_counts(n_ratings, n_users, n_avail, urng)

    activity = np.log(counts.astype(np.float64))
    activity = (activity - activity.mean()) / (activity.std() + 1e-9)
    # Heavy raters are harsher critics (as in MovieLens).
    user_bias = urng.normal(0, SD_USER_BIAS, n_users) - 0.08 * activity
    user_noise = np.exp(urng.normal(0, 0.2, n_users))
    half_star = urng.random(n_users) < 0.7
    tagger = urng.random(n_users) < 0.06
    p = urng.normal(0, SD_FACTOR, (n_users, RANK)).astype(np.float32)
    demo = None
    if demographics:
        # Their own seed stream, so nothing drawn above changes.
        demo = draw_demographics(n_users, genre_mat, np.random.default_rng(np.random.SeedSequence([seed, 7004])))
        user_bias = user_bias + DEMO_MEAN_SHIFT + AGE_BIAS[demo.age_bucket] + FEMALE_BIAS * demo.female
        p = (np.sqrt(1 - DEMO_FACTOR_SHARE) * p + np.sqrt(DEMO_FACTOR_SHARE) * demo.factors).astype(np.float32)
        half_star = np.zeros(n_users, dtype=bool)  # ml-100k and ml-1m have whole stars only

    return World(
        n_items=n_items, n_users=n_users, t0=t0, t1=t1, movie_ids=movie_ids, year=year,
        release_ts=release_ts, genre_mat=genre_mat, primary_genre=primary_genre,
        titles=titles, imdb=imdb, tmdb=tmdb, item_bias=item_bias, item_spread=item_spread,
        q=q.astype(np.float32), rel_order=rel_order, rel_sorted=rel_sorted, cum_mass=cum_mass,
        counts=counts, t_start=t_start, t_end=t_end, n_avail=n_avail, user_bias=user_bias,
        user_noise=user_noise, half_star=half_star, tagger=tagger, p=p, demo=demo,
    )  # fmt: skip


def draw_demographics(n_users: int, genre_mat: np.ndarray, rng: np.random.Generator) -> Demographics:
    """Age bucket, gender and occupation with ML-1M's marginals (students are young,
    the retired old), and the per-genre taste they imply: age and gender tastes from
    `tables`, plus a random taste per occupation."""
    age = rng.choice(len(AGE_SHARE), n_users, p=AGE_SHARE / AGE_SHARE.sum()).astype(np.int8)
    female = rng.random(n_users) < FEMALE_SHARE
    # Occupation given age: the prior times a per-bucket factor, drawn by inverse CDF.
    fit = np.ones((len(AGE_SHARE), len(OCCUPATION_SHARE)))
    fit[0, :] = 0.1  # under 18: mostly K-12 students
    fit[:, K12] = [40.0, 0.3, 0.02, 0.02, 0.02, 0.02, 0.02]
    fit[:, COLLEGE] = [1.0, 4.0, 0.8, 0.2, 0.1, 0.05, 0.05]
    fit[:, RETIRED] = [0.0, 0.0, 0.02, 0.05, 0.3, 1.5, 12.0]
    cum = np.cumsum(OCCUPATION_SHARE[None, :] * fit, axis=1)
    x = rng.random(n_users) * cum[age, -1]
    occupation = (cum[age] < x[:, None]).sum(axis=1).astype(np.int8)
    occ_taste = rng.normal(0, SD_OCCUPATION_TASTE, (len(OCCUPATION_SHARE), len(GENRES)))
    taste = AGE_GENRE_TASTE[age] + np.outer(female, FEMALE_GENRE_TASTE) + occ_taste[occupation]
    n_gen = genre_mat.sum(1, keepdims=True)
    weight = genre_mat / np.maximum(n_gen, 1)
    # One latent vector per age bucket, gender and occupation; their sum has the spread
    # of an individual's taste (SD_FACTOR per dimension).
    lat_age = rng.normal(0, SD_FACTOR, (len(AGE_SHARE), RANK))
    lat_sex = rng.normal(0, SD_FACTOR, (2, RANK))
    lat_occ = rng.normal(0, SD_FACTOR, (len(OCCUPATION_SHARE), RANK))
    factors = (lat_age[age] + lat_sex[female.astype(np.int64)] + lat_occ[occupation]) / np.sqrt(3.0)
    return Demographics(
        age_bucket=age, female=female, occupation=occupation,
        genre_taste=taste.astype(np.float32), genre_weight=weight.astype(np.float32),
        factors=factors.astype(np.float32),
    )  # fmt: skip


def allocate_counts(
    n_ratings: int, n_users: int, n_avail: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Ratings per user: floor of 20 plus a log-normal share, capped, summing exactly."""
    cap = np.floor(MAX_USER_SHARE * n_avail).astype(np.int64)
    if cap.sum() < n_ratings:
        raise ConfigError(
            f"n_ratings={n_ratings} is too many for {n_users} users x {len(n_avail)} movies "
            f"(at most {int(cap.sum())} fit); raise n_users/n_items or lower n_ratings"
        )
    floor = np.minimum(min(MIN_USER_RATINGS, n_ratings // n_users), cap)
    floor = np.maximum(floor, np.minimum(1, cap))
    extra = n_ratings - int(floor.sum())
    # Log-normal activity (ML: median ~70, mean ~155, 99th pct ~1,300 ratings).
    w = np.exp(rng.normal(0, 1.45, n_users))
    room = (cap - floor).astype(np.float64)
    x = np.zeros(n_users)
    # Water-filling: hand out `extra` by weight; users that hit their cap pass it on.
    for _ in range(50):
        left = extra - x.sum()
        open_ = x < room - 1e-9
        if left < 0.5 or not open_.any():
            break
        add = np.where(open_, w, 0.0)
        x = np.minimum(x + add / add.sum() * left, room)
    xi = np.floor(x).astype(np.int64)
    rem = extra - int(xi.sum())
    if rem > 0:
        # Give the rounding remainder to the largest fractional parts that have room.
        frac = np.where(xi < room, x - xi, -1.0)
        top = np.argsort(-frac, kind="stable")[:rem]
        xi[top] += 1
    return floor + xi


def items_meta(w: World) -> pl.DataFrame:
    rows, cols = np.nonzero(w.genre_mat)
    glist = (
        pl.DataFrame({"item": rows.astype(np.int32), "g": np.asarray(GENRES)[cols]})
        .group_by("item", maintain_order=True)
        .agg(pl.col("g").alias("genres"))
    )
    base = pl.DataFrame(
        {
            "item": np.arange(w.n_items, dtype=np.int32),
            "movieId": w.movie_ids,
            "title": w.titles.astype(str),
            "year": w.year,
        }
    )
    meta = base.join(glist, on="item", how="left").with_columns(
        pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )
    return meta.with_columns(
        pl.Series("imdbId", w.imdb),
        pl.Series("tmdbId", w.tmdb).fill_nan(None).cast(pl.Int64),
    )
