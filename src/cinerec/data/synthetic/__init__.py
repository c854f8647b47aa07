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

Modules: `tables` (genres, words, model scales), `world` (movies and users), `draw`
(ratings per chunk of users), `output` (`generate_dataset`, `generate`).
"""

from __future__ import annotations

from cinerec.data.synthetic.output import generate, generate_dataset
from cinerec.data.synthetic.tables import GENRES, NO_GENRES

__all__ = ["GENRES", "NO_GENRES", "generate", "generate_dataset"]
