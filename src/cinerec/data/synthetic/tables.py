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

# ---- demographics (ml-100k / ml-1m formats) ------------------------------------------
# ML-1M's age buckets (users.dat codes), their labels and the real share of each; the
# ml-100k format writes an age drawn within the bucket's range.
AGE_CODES = np.array([1, 18, 25, 35, 45, 50, 56], dtype=np.int32)
AGE_LABELS = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
AGE_SHARE = np.array([222, 1103, 2096, 1193, 550, 496, 380], dtype=np.float64)
AGE_RANGE = np.array([[7, 18], [18, 25], [25, 35], [35, 45], [45, 50], [50, 56], [56, 74]])
GENDERS = ("F", "M")
FEMALE_SHARE = 0.28
# ML-1M's users per occupation code (0-20, names in movielens.formats.ML1M_OCCUPATIONS).
OCCUPATION_SHARE = np.array(
    [711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302, 144, 241,
     502, 70, 72, 281], dtype=np.float64,
)  # fmt: skip
K12, COLLEGE, RETIRED = 10, 4, 13
#: The ml-100k name (u.occupation) of each ml-1m occupation code.
ML100K_OCCUPATION_OF = (
    "other", "educator", "artist", "administrator", "student", "salesman", "healthcare",
    "executive", "other", "homemaker", "student", "lawyer", "programmer", "retired",
    "marketing", "scientist", "other", "engineer", "technician", "none", "writer",
)  # fmt: skip
#: ml-100k's u.occupation, in file order.
ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)  # fmt: skip

# Taste by demographic, per genre of `GENRES` (in stars, before the latent projection):
# younger people like Animation / Children / Horror / Action more, older ones Drama /
# Film-Noir / War / Documentary; women Romance / Drama / Musical more, Action / Horror /
# Sci-Fi / War less. Rows: age buckets; then one row for "female minus male".
AGE_GENRE_TASTE = np.array([
    # Act  Adv  Ani  Chi  Com  Cri  Doc  Dra  Fan  Noi  Hor  IMX  Mus  Mys  Rom  Sci  Thr  War  Wes
    [0.30, 0.25, 0.45, 0.50, 0.20, -0.15, -0.40, -0.35, 0.30, -0.50, 0.25, 0.2, 0.10, -0.15, -0.10, 0.20, 0.00, -0.35, -0.40],
    [0.20, 0.15, 0.25, 0.20, 0.15, 0.05, -0.25, -0.20, 0.20, -0.30, 0.30, 0.2, -0.05, -0.05, -0.05, 0.15, 0.10, -0.20, -0.30],
    [0.05, 0.05, 0.05, 0.00, 0.05, 0.05, -0.05, -0.05, 0.05, -0.10, 0.10, 0.1, -0.05, 0.00, 0.00, 0.10, 0.05, -0.05, -0.15],
    [-0.05, 0.00, -0.10, -0.05, -0.05, 0.05, 0.05, 0.05, -0.05, 0.05, -0.10, 0.0, 0.00, 0.05, 0.05, -0.05, 0.00, 0.05, 0.05],
    [-0.15, -0.05, -0.20, -0.15, -0.10, 0.00, 0.20, 0.15, -0.15, 0.20, -0.30, -0.1, 0.10, 0.10, 0.10, -0.15, -0.05, 0.20, 0.20],
    [-0.20, -0.10, -0.30, -0.20, -0.10, 0.00, 0.25, 0.20, -0.20, 0.30, -0.40, -0.1, 0.15, 0.15, 0.10, -0.20, -0.05, 0.30, 0.30],
    [-0.30, -0.15, -0.40, -0.30, -0.15, 0.00, 0.35, 0.30, -0.30, 0.45, -0.55, -0.2, 0.25, 0.15, 0.15, -0.30, -0.10, 0.45, 0.45],
])  # fmt: skip
FEMALE_GENRE_TASTE = np.array(
    [-0.30, -0.10, 0.10, 0.15, 0.05, -0.10, 0.05, 0.20, 0.05, -0.05, -0.30, 0.00, 0.35,
     0.05, 0.40, -0.30, -0.05, -0.35, -0.25],
)  # fmt: skip
# Mean-rating offset by age bucket (ML-1M: older users rate higher).
AGE_BIAS = np.array([-0.06, -0.08, -0.03, 0.02, 0.06, 0.08, 0.12])
FEMALE_BIAS = 0.02
# Spread of a random genre taste per occupation (on top of age and gender).
SD_OCCUPATION_TASTE = 0.25
# Share of a user's latent taste variance that comes from their age, gender and
# occupation (one latent vector each); the total variance is unchanged.
DEMO_FACTOR_SHARE = 0.35
# How strongly demographic affinity (in stars) raises the odds of rating a movie:
# people watch what people like them enjoy (missing not at random, as on MovieLens).
DEMO_SELECTION = 2.0
# Watching what one likes lifts the mean rating; this brings it back to ML-1M's ~3.58.
DEMO_MEAN_SHIFT = -0.12
