"""Arrays computed by a pretrained encoder, kept in the cache folder between runs.

Encoding 9,742 movies' texts or posters takes seconds to minutes; the result depends
only on the model's files and the inputs, so it is stored under ``<cache>/<kind>/``
keyed by a hash of both (`folder_fingerprint` for the model, the caller's bytes for the
inputs) and read back on the next run. A damaged or mis-shaped entry is recomputed; an
entry is written atomically, so a run killed mid-write leaves none.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from cinerec.data.store import cache_dir
from cinerec.errors import ConfigError


def folder_fingerprint(path: Path) -> str:
    """Hash of a folder's files' names, sizes and mtimes (cheap, changes on update)."""
    h = hashlib.blake2b(digest_size=12)
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


class LocalModel:
    """A pretrained model kept in a local folder, loaded on first use (``_model``)."""

    def __init__(self, path: Path, device: str = "cpu"):
        self.path, self.device = path, device
        self._model: Any = None

    @property
    def fingerprint(self) -> str:
        return folder_fingerprint(self.path)


def offline_transformers(install_hint: str) -> None:
    """Before loading a local folder with transformers: never ask the Hub, no progress
    bars or warnings; a `ConfigError` with ``install_hint`` when transformers is missing."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ConfigError(f"transformers is missing; {install_hint}") from None
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def cached_arrays(
    kind: str, key: Iterable[bytes], n_rows: int, compute: Callable[[], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:  # fmt: skip
    """``compute()``'s named arrays (each ``n_rows`` long), from the cache when an entry
    for ``key`` exists; the second value says whether it was a hit and how long
    encoding (or reading) took."""
    h = hashlib.blake2b(digest_size=16)
    for part in key:
        h.update(part + b"\x00")
    root = cache_dir()
    path = root / kind / f"{h.hexdigest()}.npz" if root is not None else None
    t0 = time.perf_counter()
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if arrays and all(a.shape[0] == n_rows for a in arrays.values()):
                return arrays, {"cached": True, "seconds": time.perf_counter() - t0}
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed
    arrays = compute()
    if path is not None:
        from cinerec._util.fs import atomic_file

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return arrays, {"cached": False, "seconds": time.perf_counter() - t0}
