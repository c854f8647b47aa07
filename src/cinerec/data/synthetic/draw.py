"""Drawing the ratings and tag applications of one chunk of users from the world.

Chunks have a fixed number of users and their own seed stream, so the output does not
depend on memory or timing and the same seed gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cinerec._util import console, validate
from cinerec.data.synthetic.tables import (
    CHUNK_USERS,
    GENERIC_TAGS,
    GENRES,
    HALF_STAR_TS,
    MEAN_DRIFT,
    MU,
    SD_NOISE,
    tag_vocab,
    year_ts,
)
from cinerec.data.synthetic.world import TEMPER, World, make_world
from cinerec.errors import ConfigError

#: Far beyond any MovieLens release; larger counts are typos (and would not fit in RAM).
MAX_RATINGS = 10**10
#: Sampling rounds in which demographic affinity thins the candidates (later rounds
#: take every candidate, so a heavy user always gets their count).
SELECT_ROUNDS = 8


def _draw_pairs(w: World, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
        level = min(rnd, len(TEMPER) - 1)
        cum = w.cum_mass[level]
        over = 1.25 if rnd == 0 else 2.0 + rnd
        m = np.ceil(deficit[todo] * over).astype(np.int64) + 2
        u_rep = np.repeat(local[todo], m)
        mass = cum[avail[todo] - 1]
        x = rng.random(u_rep.shape[0]) * np.repeat(mass, m)
        pos = np.minimum(np.searchsorted(cum, x, side="right"), np.repeat(avail[todo] - 1, m))
        cand = u_rep * n_items + w.rel_order[pos]
        if w.demo is not None and rnd < SELECT_ROUNDS:
            # People watch what people like them enjoy (ml-100k / ml-1m formats only).
            cand = cand[rng.random(cand.shape[0]) < w.demo.accept(users[u_rep], w.rel_order[pos], w.q)]
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


def _chunk(w: World, seed: int, index: int, users: np.ndarray) -> dict[str, np.ndarray]:
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
        MU
        + MEAN_DRIFT * (frac - 0.5)
        + w.user_bias[u]
        + w.item_bias[i]
        + np.einsum("ij,ij->i", w.p[u], w.q[i], dtype=np.float32)
        + rng.standard_normal(n, dtype=np.float32)
        * (SD_NOISE * w.item_spread[i] * w.user_noise[u])
    )
    if w.demo is not None:  # taste by age, gender and occupation (ml-100k / ml-1m)
        x = x + np.einsum("ij,ij->i", w.demo.genre_weight[i], w.demo.genre_taste[u])
    half = w.half_star[u] & (t >= HALF_STAR_TS)
    r = np.where(half, np.clip(np.round(x * 2) / 2, 0.5, 5.0), np.clip(np.round(x), 1.0, 5.0))

    # Tags: a few users tag about half of what they rate, mostly with genre words.
    tag_rows = np.flatnonzero(w.tagger[u] & (rng.random(n) < 0.5))
    ti = i[tag_rows]
    pg = w.primary_genre[ti]
    generic = (pg < 0) | (rng.random(tag_rows.shape[0]) < 0.35)
    vocab = tag_vocab()
    pick = rng.integers(0, 4, tag_rows.shape[0])
    gen_pick = rng.integers(0, len(GENERIC_TAGS), tag_rows.shape[0])
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


def chunks(
    n_ratings: int,
    n_users: int,
    n_items: int,
    seed: int,
    progress: bool,
    start_year: int,
    end_year: int,
    demographics: bool = False,
) -> tuple[World, Iterator[dict[str, np.ndarray]]]:
    """The world and an iterator over its chunks of ratings (sizes checked first);
    ``demographics``: see `make_world`."""
    n_ratings = validate.integer("n_ratings", n_ratings, lo=1, hi=MAX_RATINGS)
    n_users = validate.integer("n_users", n_users, hi=MAX_RATINGS)
    n_items = validate.integer("n_items", n_items, hi=MAX_RATINGS)
    seed = validate.seed(seed)
    start_year = validate.integer("start_year", start_year, lo=1970, hi=2200)
    end_year = validate.integer("end_year", end_year, lo=1970, hi=2200)
    if n_users < 1 or n_items < 1:
        raise ConfigError(f"synthetic: n_users={n_users} and n_items={n_items} must be >= 1")
    if n_ratings < n_users:
        raise ConfigError(
            f"synthetic: n_ratings={n_ratings} < n_users={n_users}; every user needs a rating"
        )
    if not start_year < end_year + 1:
        raise ConfigError(
            f"synthetic: start_year={start_year}, end_year={end_year}: need 1970 <= start <= end"
        )
    t0, t1 = year_ts(start_year), year_ts(end_year + 1)
    w = make_world(n_ratings, n_users, n_items, seed, t0, t1, demographics)

    def gen() -> Iterator[dict[str, np.ndarray]]:
        bounds = range(0, n_users, CHUNK_USERS)
        with console.progress(progress) as bar:
            task = bar.add_task("synthetic ratings", total=n_ratings)
            for index, a in enumerate(bounds):
                users = np.arange(a, min(a + CHUNK_USERS, n_users), dtype=np.int64)
                part = _chunk(w, seed, index, users)
                bar.advance(task, part["users"].shape[0])
                yield part

    return w, gen()
