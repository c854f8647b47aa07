"""A synthetic MovieLens release (ml-25m file format) with realistic structure.

The generator exists so that every model, split and benchmark can run at any scale
(up to ML-25M size and beyond) without downloading anything, and so that tests have
data whose ground truth is known. What it reproduces, and why:

* Zipf-like item popularity and log-normal user activity (every user rates at least
  20 movies, as in MovieLens), so popularity baselines and long-tail metrics behave
  as on real data.
* A bias + rank-10 latent-factor model plus Gaussian noise, tuned so that a bias-only
  model reaches RMSE ~0.95 and a good matrix factorisation ~0.85: factor models must
  clearly beat baselines, as on MovieLens.
* Genre-dependent spread (Horror and Comedy polarise, Documentary and Film-Noir agree)
  and genre / age offsets, so the variance analysis has something to find.
* Time: movies have release years, a user rates only movies already released during
  their active window, the global mean drifts slowly down over the years, and ratings
  before 2003-02 are whole stars only (MovieLens introduced half stars then).
* Non-contiguous movie ids, unique (user, movie) pairs, quoted "Title, The (Year)"
  titles, IMDb/TMDB links, tag applications, so loaders and id maps are exercised.

Everything is vectorised numpy and generated in fixed-size chunks of users, each with
its own seed stream: the output does not depend on memory or chunk timing, and the
same seed gives the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cinerec.data.dataset import Dataset, IdMap
from cinerec.errors import ConfigError

#: The 19 genre names of ML-25M's movies.csv (sorted, as MovieLens lists them).
GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"

# Number of ML-25M movies per genre: the prior for drawing genres.
_GENRE_FREQ = np.array(
    [7348, 4145, 2929, 2935, 16870, 5319, 5605, 25606, 2731, 353,
     5989, 195, 1054, 2925, 7719, 3595, 8654, 1874, 1399], dtype=np.float64,
)  # fmt: skip
# Multiplier of a genre's taste + noise spread: polarising genres > consensual ones.
_GENRE_SPREAD = np.array(
    [1.00, 1.00, 0.95, 1.10, 1.15, 0.95, 0.70, 0.90, 1.05, 0.70,
     1.30, 0.90, 1.05, 0.95, 1.05, 1.05, 1.00, 0.85, 0.95], dtype=np.float64,
)  # fmt: skip
# Offset of a genre's mean rating (MovieLens: Film-Noir/War/Documentary high, Horror low).
_GENRE_OFFSET = np.array(
    [-0.08, 0.0, 0.10, -0.15, -0.10, 0.10, 0.20, 0.12, -0.02, 0.30,
     -0.35, 0.05, 0.00, 0.08, 0.00, -0.05, 0.00, 0.20, 0.05], dtype=np.float64,
)  # fmt: skip

_GENRE_TAGS = {
    "Action": ("action", "explosions", "fight scenes", "car chase"),
    "Adventure": ("adventure", "treasure hunt", "epic journey", "quest"),
    "Animation": ("animation", "pixar", "beautifully animated", "anime"),
    "Children": ("family", "kids", "disney", "coming of age"),
    "Comedy": ("funny", "hilarious", "dark comedy", "quirky"),
    "Crime": ("heist", "mafia", "organized crime", "gangsters"),
    "Documentary": ("documentary", "history", "nature", "biography"),
    "Drama": ("emotional", "atmospheric", "thought-provoking", "based on a book"),
    "Fantasy": ("magic", "dragons", "fairy tale", "surreal"),
    "Film-Noir": ("noir", "black and white", "femme fatale", "classic"),
    "Horror": ("scary", "gore", "zombies", "cult film"),
    "IMAX": ("imax", "visually stunning", "spectacle", "3d"),
    "Musical": ("musical", "great soundtrack", "dance", "broadway"),
    "Mystery": ("twist ending", "mindfuck", "detective", "whodunit"),
    "Romance": ("romance", "love story", "romantic comedy", "chick flick"),
    "Sci-Fi": ("sci-fi", "time travel", "dystopia", "space"),
    "Thriller": ("suspense", "tense", "psychological", "serial killer"),
    "War": ("war", "world war ii", "military", "anti-war"),
    "Western": ("western", "cowboys", "gunfight", "spaghetti western"),
}
_GENERIC_TAGS = (
    "overrated", "underrated", "classic", "great acting", "boring", "predictable",
    "must see", "visually appealing", "slow", "in netflix queue", "seen more than once",
    "good dialogue",
)  # fmt: skip

_ADJ = (
    "Silent", "Last", "Dark", "Golden", "Broken", "Hidden", "Lost", "Burning", "Crimson",
    "Endless", "Frozen", "Wild", "Secret", "Little", "Big", "Final", "Midnight", "Electric",
    "Bitter", "Sweet", "Savage", "Quiet", "Restless", "Hollow", "Iron", "Velvet", "Lonely",
    "Strange", "Distant", "Second", "Blue", "Red", "Infinite", "Fallen", "Crooked", "Royal",
)  # fmt: skip
_NOUN = (
    "River", "City", "Summer", "Night", "Heart", "Road", "Storm", "Kingdom", "Garden",
    "Shadow", "Dream", "Island", "Mirror", "Winter", "Fire", "Empire", "Witness", "Stranger",
    "Promise", "Horizon", "Circus", "Harbor", "Machine", "Letter", "Bridge", "Voyage", "Ghost",
    "Detective", "Daughter", "Brother", "Wolf", "Train", "Hotel", "Orchestra", "Frontier",
)  # fmt: skip

_RANK = 10  # latent dimensions of the true taste model
_MIN_USER_RATINGS = 20  # MovieLens keeps only users with >= 20 ratings
_MAX_USER_SHARE = 0.8  # a user rates at most this share of the movies available to them
_CHUNK_USERS = 8192  # fixed, so the bytes never depend on memory or machine
_HALF_STAR_TS = int(datetime(2003, 2, 12, tzinfo=UTC).timestamp())
_DAY = 86_400

# Taste-model scales, tuned so that (on ML-25M-like sizes) mean ~3.53, std ~1.05,
# bias-only RMSE ~0.95 and a good MF ~0.85.
_MU = 3.42
_MEAN_DRIFT = -0.15  # change of the global mean from the first to the last year
_SD_USER_BIAS = 0.38
_SD_ITEM_BIAS = 0.33
_SD_FACTOR = 0.78  # per side: the interaction term has std ~ _SD_FACTOR**2
_SD_NOISE = 0.84


def _year_ts(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


@dataclass
class _World:
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


# Popularity tempering per sampling round: heavy users exhaust the head and must reach
# the tail; flatter distributions in later rounds get there without huge over-draws.
_TEMPER = (1.0, 0.85, 0.7, 0.5, 0.3, 0.0)


def _make_world(n_ratings: int, n_users: int, n_items: int, seed: int, t0: int, t1: int) -> _World:
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
    release_ts = np.array([_year_ts(int(y)) for y in range(first_year, end_year + 1)], np.int64)[
        year - first_year
    ] + rng.integers(0, 365 * _DAY, n_items)
    release_ts = np.minimum(release_ts, t1 - _DAY)

    # Genres: 1-4 per movie, drawn without replacement by prior frequency (Gumbel top-k);
    # ~2% have none, as in ML-25M.
    n_g = len(GENRES)
    keys = np.log(_GENRE_FREQ)[None, :] + rng.gumbel(size=(n_items, n_g))
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
    item_spread = np.where(n_gen > 0, (genre_mat @ _GENRE_SPREAD) / denom, 1.0)
    genre_off = np.where(n_gen > 0, (genre_mat @ _GENRE_OFFSET) / denom, 0.0)
    # Survivorship: the old movies still rated today are the good ones.
    age_off = np.clip((1990 - year) / 60.0, 0.0, 1.0) * 0.25
    item_bias = genre_off + age_off + rng.normal(0, _SD_ITEM_BIAS, n_items)

    # Latent item factors share a genre component (so content features carry signal).
    genre_emb = rng.normal(0, 1, (n_g, _RANK))
    gpart = (genre_mat @ genre_emb) / np.sqrt(denom)[:, None]
    q = (0.6 * gpart + 0.8 * rng.normal(0, 1, (n_items, _RANK))) / np.sqrt(_RANK)
    q *= _SD_FACTOR * item_spread[:, None]

    # Popularity: Zipf over a rank that prefers good movies, damped for late releases
    # (they have had less time to collect ratings).
    pop_key = rng.gumbel(size=n_items) + 1.5 * item_bias / _SD_ITEM_BIAS
    rank = np.empty(n_items, np.int64)
    rank[np.argsort(-pop_key)] = np.arange(1, n_items + 1)
    avail = np.clip((t1 - release_ts) / (t1 - t0), 0.05, 1.0)
    pop = rank.astype(np.float64) ** -1.15 * np.sqrt(avail)

    rel_order = np.argsort(release_ts, kind="stable")
    rel_sorted = release_ts[rel_order]
    cum_mass = [np.cumsum(pop[rel_order] ** b) for b in _TEMPER]

    # Titles ("The X" is written "X, The" as MovieLens does), links.
    pattern = rng.integers(0, 4, n_items)
    a = np.asarray(_ADJ)[rng.integers(0, len(_ADJ), n_items)]
    n1 = np.asarray(_NOUN)[rng.integers(0, len(_NOUN), n_items)]
    n2 = np.asarray(_NOUN)[rng.integers(0, len(_NOUN), n_items)]
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
    t_start = t0 + (urng.random(n_users) * (t1 - t0 - _DAY)).astype(np.int64)
    one_session = urng.random(n_users) < 0.45
    span = np.where(
        one_session,
        urng.exponential(2 * 3600.0, n_users),
        np.exp(urng.normal(np.log(150 * _DAY), 1.4, n_users)),
    ).astype(np.int64)
    t_end = np.minimum(t_start + np.maximum(span, 60), t1 - 1)
    n_avail = np.searchsorted(rel_sorted, t_end, side="right").astype(np.int64)

    counts = _allocate_counts(n_ratings, n_users, n_avail, urng)

    activity = np.log(counts.astype(np.float64))
    activity = (activity - activity.mean()) / (activity.std() + 1e-9)
    # Heavy raters are harsher critics (as in MovieLens).
    user_bias = urng.normal(0, _SD_USER_BIAS, n_users) - 0.08 * activity
    user_noise = np.exp(urng.normal(0, 0.2, n_users))
    half_star = urng.random(n_users) < 0.7
    tagger = urng.random(n_users) < 0.06
    p = urng.normal(0, _SD_FACTOR, (n_users, _RANK)).astype(np.float32)

    return _World(
        n_items=n_items, n_users=n_users, t0=t0, t1=t1, movie_ids=movie_ids, year=year,
        release_ts=release_ts, genre_mat=genre_mat, primary_genre=primary_genre,
        titles=titles, imdb=imdb, tmdb=tmdb, item_bias=item_bias, item_spread=item_spread,
        q=q.astype(np.float32), rel_order=rel_order, rel_sorted=rel_sorted, cum_mass=cum_mass,
        counts=counts, t_start=t_start, t_end=t_end, n_avail=n_avail, user_bias=user_bias,
        user_noise=user_noise, half_star=half_star, tagger=tagger, p=p,
    )  # fmt: skip


def _allocate_counts(
    n_ratings: int, n_users: int, n_avail: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Ratings per user: floor of 20 plus a log-normal share, capped, summing exactly."""
    cap = np.floor(_MAX_USER_SHARE * n_avail).astype(np.int64)
    if cap.sum() < n_ratings:
        raise ConfigError(
            f"n_ratings={n_ratings} is too many for {n_users} users x {len(n_avail)} movies "
            f"(at most {int(cap.sum())} fit); raise n_users/n_items or lower n_ratings"
        )
    floor = np.minimum(min(_MIN_USER_RATINGS, n_ratings // n_users), cap)
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


def _draw_pairs(w: _World, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Distinct (user, item) keys ``u * n_items + i`` for a chunk, sorted.

    Each user draws items by popularity among movies released before their window
    ends, with replacement and an over-draw; duplicates are removed by first
    occurrence (so the kept set is a random subset, not the lowest item ids); users
    still short draw again from a flatter distribution.
    """
    n_items = w.n_items
    need = w.counts[users]
    avail = w.n_avail[users]
    local = np.arange(users.shape[0], dtype=np.int64)
    kept = np.empty(0, np.int64)
    have = np.zeros(users.shape[0], np.int64)
    for rnd in range(64):
        deficit = need - have
        todo = deficit > 0
        if not todo.any():
            break
        level = min(rnd, len(_TEMPER) - 1)
        cum = w.cum_mass[level]
        over = 1.25 if rnd == 0 else 2.0 + rnd
        m = np.ceil(deficit[todo] * over).astype(np.int64) + 2
        u_rep = np.repeat(local[todo], m)
        mass = cum[avail[todo] - 1]
        x = rng.random(u_rep.shape[0]) * np.repeat(mass, m)
        pos = np.minimum(np.searchsorted(cum, x, side="right"), np.repeat(avail[todo] - 1, m))
        cand = u_rep * n_items + w.rel_order[pos]
        allk = np.concatenate([kept, cand])
        # Unique pairs by first occurrence, then grouped by user in that order. Both
        # steps sort one int64 key (pair or user, then position): several times faster
        # than np.unique(return_index) or a stable argsort on large arrays.
        big = np.int64(allk.shape[0])
        comp = np.sort(allk * big + np.arange(big))
        ks = comp // big
        first = comp[np.r_[True, ks[1:] != ks[:-1]]] % big
        comp = np.sort((allk[first] // n_items) * big + first)
        uniq = allk[comp % big]
        uu = uniq // n_items
        cnt = np.bincount(uu, minlength=users.shape[0])
        start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        pos_in_user = np.arange(uniq.shape[0]) - start[uu]
        kept = uniq[pos_in_user < need[uu]]
        have = np.minimum(cnt, need)
    else:  # pragma: no cover - the caps make this unreachable
        raise RuntimeError("synthetic: could not draw enough distinct movies")
    kept.sort()
    return kept


def _chunk(w: _World, seed: int, index: int, users: np.ndarray) -> dict[str, np.ndarray]:
    """Ratings (and tag applications) of one chunk of users, sorted by (user, movie)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7003, index]))
    keys = _draw_pairs(w, users, rng)
    lu = keys // w.n_items
    u = users[lu]
    i = (keys % w.n_items).astype(np.int64)
    n = keys.shape[0]

    # Time: uniform in the user's window, but never before the movie's release.
    ts0 = w.t_start[u]
    ts1 = w.t_end[u]
    t = ts0 + (rng.random(n) * (ts1 - ts0)).astype(np.int64)
    rel = w.release_ts[i]
    late = t < rel
    t = np.where(late, rel + (rng.random(n) * (ts1 - rel)).astype(np.int64), t)

    frac = (t - w.t0) / (w.t1 - w.t0)
    x = (
        _MU
        + _MEAN_DRIFT * (frac - 0.5)
        + w.user_bias[u]
        + w.item_bias[i]
        + np.einsum("ij,ij->i", w.p[u], w.q[i], dtype=np.float32)
        + rng.standard_normal(n, dtype=np.float32)
        * (_SD_NOISE * w.item_spread[i] * w.user_noise[u])
    )
    half = w.half_star[u] & (t >= _HALF_STAR_TS)
    r = np.where(half, np.clip(np.round(x * 2) / 2, 0.5, 5.0), np.clip(np.round(x), 1.0, 5.0))

    # Tags: a few users tag about half of what they rate, mostly with genre words.
    tag_rows = np.flatnonzero(w.tagger[u] & (rng.random(n) < 0.5))
    ti = i[tag_rows]
    pg = w.primary_genre[ti]
    generic = (pg < 0) | (rng.random(tag_rows.shape[0]) < 0.35)
    vocab = _tag_vocab()
    pick = rng.integers(0, 4, tag_rows.shape[0])
    gen_pick = rng.integers(0, len(_GENERIC_TAGS), tag_rows.shape[0])
    tag_idx = np.where(generic, len(GENRES) * 4 + gen_pick, np.maximum(pg, 0) * 4 + pick)
    return {
        "users": u.astype(np.int32),
        "items": i.astype(np.int32),
        "ratings": r.astype(np.float32),
        "timestamps": t.astype(np.int64),
        "tag_users": u[tag_rows].astype(np.int32),
        "tag_items": ti.astype(np.int32),
        "tag_text": vocab[tag_idx],
        "tag_ts": t[tag_rows] + rng.integers(0, 3600, tag_rows.shape[0]),
    }


def _tag_vocab() -> np.ndarray:
    words = [t for g in GENRES for t in _GENRE_TAGS[g]] + list(_GENERIC_TAGS)
    return np.asarray(words, dtype=object)


def _chunks(
    n_ratings: int,
    n_users: int,
    n_items: int,
    seed: int,
    progress: bool,
    start_year: int,
    end_year: int,
) -> tuple[_World, Iterator[dict[str, np.ndarray]]]:
    if n_users < 1 or n_items < 1:
        raise ConfigError(f"synthetic: n_users={n_users} and n_items={n_items} must be >= 1")
    if n_ratings < n_users:
        raise ConfigError(
            f"synthetic: n_ratings={n_ratings} < n_users={n_users}; every user needs a rating"
        )
    if not start_year < end_year + 1 or start_year < 1970:
        raise ConfigError(
            f"synthetic: start_year={start_year}, end_year={end_year}: need 1970 <= start <= end"
        )
    t0, t1 = _year_ts(start_year), _year_ts(end_year + 1)
    w = _make_world(n_ratings, n_users, n_items, seed, t0, t1)

    def gen() -> Iterator[dict[str, np.ndarray]]:
        bounds = range(0, n_users, _CHUNK_USERS)
        with Progress(
            TextColumn("synthetic ratings"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task("gen", total=n_ratings)
            for index, a in enumerate(bounds):
                users = np.arange(a, min(a + _CHUNK_USERS, n_users), dtype=np.int64)
                part = _chunk(w, seed, index, users)
                bar.advance(task, part["users"].shape[0])
                yield part

    return w, gen()


def _items_meta(w: _World) -> pl.DataFrame:
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


def _source(n_ratings: int, n_users: int, n_items: int, seed: int, sy: int, ey: int) -> dict:
    return {
        "name": "synthetic",
        "generator": "cinerec.data.synthetic",
        "seed": seed,
        "n_ratings": n_ratings,
        "n_users": n_users,
        "n_items": n_items,
        "start_year": sy,
        "end_year": ey,
    }


def generate_dataset(
    n_ratings: int,
    n_users: int,
    n_items: int,
    seed: int = 0,
    progress: bool = True,
    start_year: int = 1996,
    end_year: int = 2023,
) -> Dataset:
    """Generate a synthetic MovieLens set in memory (same content as `generate` writes).

    Rows are ordered by (userId, movieId) like ratings.csv; ``item_ids`` covers the
    whole catalogue; ``items_meta`` has item, movieId, title (without year), year,
    genres (list), imdbId, tmdbId; ``tags`` has user, item, tag, timestamp.
    """
    w, parts = _chunks(n_ratings, n_users, n_items, seed, progress, start_year, end_year)
    cols: dict[str, list[np.ndarray]] = {}
    for part in parts:
        for key, arr in part.items():
            cols.setdefault(key, []).append(arr)
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    tags = pl.DataFrame(
        {
            "user": cat["tag_users"],
            "item": cat["tag_items"],
            "tag": cat["tag_text"].astype(str),
            "timestamp": cat["tag_ts"].astype(np.int64),
        },
        schema={"user": pl.Int32, "item": pl.Int32, "tag": pl.String, "timestamp": pl.Int64},
    )
    return Dataset(
        name=f"synthetic-{n_ratings}-s{seed}",
        users=cat["users"],
        items=cat["items"],
        ratings=cat["ratings"],
        timestamps=cat["timestamps"],
        user_ids=IdMap(np.arange(1, n_users + 1, dtype=np.int64)),
        item_ids=IdMap(w.movie_ids),
        rating_scale=(0.5, 5.0),
        items_meta=_items_meta(w),
        item_genres=w.genre_mat.copy(),
        genre_names=GENRES,
        tags=tags,
        source=_source(n_ratings, n_users, n_items, seed, start_year, end_year),
    )


_README = """\
Synthetic MovieLens-format data set (NOT real user data)
========================================================

Generated by cinerec.data.synthetic (seed={seed}).
ratings: {n_ratings:,}   users: {n_users:,}   movies: {n_items:,}   years: {sy}-{ey}

The files follow the ml-25m format (ratings.csv, movies.csv, tags.csv, links.csv), but
every user, movie, title, rating, tag and link is invented: ratings come from a bias +
rank-{rank} latent-factor model with genre-dependent noise, Zipf-like movie popularity,
log-normal user activity (>= {min_r} ratings per user where feasible), release years,
and a slow drift of the mean rating over time. IMDb/TMDB ids do not refer to the real
movies with those ids. Use it for benchmarks and tests, never to draw conclusions about
people or films.
"""


def _atomic_write_csv(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    df.write_csv(tmp)
    os.replace(tmp, path)


def generate(
    out_dir: str | Path,
    n_ratings: int,
    n_users: int,
    n_items: int,
    seed: int = 0,
    progress: bool = True,
    start_year: int = 1996,
    end_year: int = 2023,
) -> Path:
    """Write a synthetic ml-25m-format release into ``out_dir``; return the folder.

    Writes ratings.csv, movies.csv, tags.csv, links.csv and README.txt. Ratings are
    streamed chunk by chunk, so peak memory is that of one chunk plus the catalogue.
    Each file is written under a temporary name and renamed when complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w, parts = _chunks(n_ratings, n_users, n_items, seed, progress, start_year, end_year)

    r_tmp = out / "ratings.csv.part"
    t_tmp = out / "tags.csv.part"
    try:
        with open(r_tmp, "wb") as fr, open(t_tmp, "wb") as ft:
            for index, part in enumerate(parts):
                pl.DataFrame(
                    {
                        "userId": part["users"].astype(np.int64) + 1,
                        "movieId": w.movie_ids[part["items"]],
                        "rating": part["ratings"],
                        "timestamp": part["timestamps"],
                    }
                ).write_csv(fr, include_header=index == 0)
                pl.DataFrame(
                    {
                        "userId": part["tag_users"].astype(np.int64) + 1,
                        "movieId": w.movie_ids[part["tag_items"]],
                        "tag": part["tag_text"].astype(str),
                        "timestamp": part["tag_ts"].astype(np.int64),
                    },
                    schema={
                        "userId": pl.Int64,
                        "movieId": pl.Int64,
                        "tag": pl.String,
                        "timestamp": pl.Int64,
                    },
                ).write_csv(ft, include_header=index == 0)
        os.replace(r_tmp, out / "ratings.csv")
        os.replace(t_tmp, out / "tags.csv")
    finally:
        r_tmp.unlink(missing_ok=True)
        t_tmp.unlink(missing_ok=True)

    meta = _items_meta(w)
    movies = meta.select(
        "movieId",
        pl.format("{} ({})", pl.col("title"), pl.col("year")).alias("title"),
        pl.when(pl.col("genres").list.len() == 0)
        .then(pl.lit(NO_GENRES))
        .otherwise(pl.col("genres").list.join("|"))
        .alias("genres"),
    )
    _atomic_write_csv(movies, out / "movies.csv")
    links = meta.select(
        "movieId",
        pl.col("imdbId").cast(pl.String).str.zfill(7).alias("imdbId"),
        "tmdbId",
    )
    _atomic_write_csv(links, out / "links.csv")
    readme = _README.format(
        seed=seed, n_ratings=n_ratings, n_users=n_users, n_items=n_items,
        sy=start_year, ey=end_year, rank=_RANK, min_r=_MIN_USER_RATINGS,
    )  # fmt: skip
    (out / "README.txt.part").write_text(readme, encoding="utf-8")
    os.replace(out / "README.txt.part", out / "README.txt")
    return out
