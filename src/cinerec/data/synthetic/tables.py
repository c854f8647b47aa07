"""The fixed tables of the synthetic generator: genres, tag words, title words, scales.

Genre frequencies are ML-25M's; spreads and offsets make the variance analysis find
what it finds on MovieLens (Horror and Comedy polarise, Documentary and Film-Noir agree).
The taste-model scales are tuned so that (on ML-25M-like sizes) mean ~3.53, std ~1.05,
a bias-only model reaches RMSE ~0.95 and a good matrix factorisation ~0.85.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

#: The 19 genre names of ML-25M's movies.csv (sorted, as MovieLens lists them).
GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"

# Number of ML-25M movies per genre: the prior for drawing genres.
GENRE_FREQ = np.array(
    [7348, 4145, 2929, 2935, 16870, 5319, 5605, 25606, 2731, 353,
     5989, 195, 1054, 2925, 7719, 3595, 8654, 1874, 1399], dtype=np.float64,
)  # fmt: skip
# Multiplier of a genre's taste + noise spread: polarising genres > consensual ones.
GENRE_SPREAD = np.array(
    [1.00, 1.00, 0.95, 1.10, 1.15, 0.95, 0.70, 0.90, 1.05, 0.70,
     1.30, 0.90, 1.05, 0.95, 1.05, 1.05, 1.00, 0.85, 0.95], dtype=np.float64,
)  # fmt: skip
# Offset of a genre's mean rating (MovieLens: Film-Noir/War/Documentary high, Horror low).
GENRE_OFFSET = np.array(
    [-0.08, 0.0, 0.10, -0.15, -0.10, 0.10, 0.20, 0.12, -0.02, 0.30,
     -0.35, 0.05, 0.00, 0.08, 0.00, -0.05, 0.00, 0.20, 0.05], dtype=np.float64,
)  # fmt: skip

GENRE_TAGS = {
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
GENERIC_TAGS = (
    "overrated", "underrated", "classic", "great acting", "boring", "predictable",
    "must see", "visually appealing", "slow", "in netflix queue", "seen more than once",
    "good dialogue",
)  # fmt: skip

ADJ = (
    "Silent", "Last", "Dark", "Golden", "Broken", "Hidden", "Lost", "Burning", "Crimson",
    "Endless", "Frozen", "Wild", "Secret", "Little", "Big", "Final", "Midnight", "Electric",
    "Bitter", "Sweet", "Savage", "Quiet", "Restless", "Hollow", "Iron", "Velvet", "Lonely",
    "Strange", "Distant", "Second", "Blue", "Red", "Infinite", "Fallen", "Crooked", "Royal",
)  # fmt: skip
NOUN = (
    "River", "City", "Summer", "Night", "Heart", "Road", "Storm", "Kingdom", "Garden",
    "Shadow", "Dream", "Island", "Mirror", "Winter", "Fire", "Empire", "Witness", "Stranger",
    "Promise", "Horizon", "Circus", "Harbor", "Machine", "Letter", "Bridge", "Voyage", "Ghost",
    "Detective", "Daughter", "Brother", "Wolf", "Train", "Hotel", "Orchestra", "Frontier",
)  # fmt: skip

RANK = 10  # latent dimensions of the true taste model
MIN_USER_RATINGS = 20  # MovieLens keeps only users with >= 20 ratings
MAX_USER_SHARE = 0.8  # a user rates at most this share of the movies available to them
CHUNK_USERS = 8192  # fixed, so the bytes never depend on memory or machine
HALF_STAR_TS = int(datetime(2003, 2, 12, tzinfo=UTC).timestamp())
DAY = 86_400

# Taste-model scales, tuned so that (on ML-25M-like sizes) mean ~3.53, std ~1.05,
# bias-only RMSE ~0.95 and a good MF ~0.85.
MU = 3.42
MEAN_DRIFT = -0.15  # change of the global mean from the first to the last year
SD_USER_BIAS = 0.38
SD_ITEM_BIAS = 0.33
SD_FACTOR = 0.78  # per side: the interaction term has std ~ SD_FACTOR**2
SD_NOISE = 0.84


def year_ts(year: int) -> int:
    """Seconds since the epoch of 1 January of ``year`` (UTC)."""
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


def tag_vocab() -> np.ndarray:
    """Every tag word: 4 per genre in `GENRES` order, then the generic ones."""
    words = [t for g in GENRES for t in GENRE_TAGS[g]] + list(GENERIC_TAGS)
    return np.asarray(words, dtype=object)
