"""Poster images: a folder of ``<movieId>.jpg`` (or .png) read into a small uint8 array.

Paper 001 learns visual features with a CNN over posters; paper 000 fuses poster
features with text. No posters ship with MovieLens, so `load_posters` reads whatever
folder the user names, resizes each image to ``size`` x ``size`` RGB, and reports
which movies have one (the rest get the "no poster" mask, never a black image
pretending to be one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinerec.errors import DataFormatError

_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def load_posters(folder: str | Path, movie_ids: np.ndarray, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(len(movie_ids), 3, size, size) uint8 images and a bool mask of movies that have
    one, from ``folder/<movieId>.<jpg|png|...>``. A file that is not a readable image
    raises `DataFormatError` naming it."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"poster folder {folder} does not exist")
    files = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES}
    out = np.zeros((len(movie_ids), 3, size, size), dtype=np.uint8)
    has = np.zeros(len(movie_ids), dtype=bool)
    for r, mid in enumerate(np.asarray(movie_ids).tolist()):
        p = files.get(str(mid))
        if p is None:
            continue
        try:
            with Image.open(p) as im:
                img = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, OSError) as e:
            raise DataFormatError(f"poster {p} is not a readable image ({e})") from None
        out[r] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
        has[r] = True
    return out, has
