"""Poster images: a folder of ``<movieId>.jpg`` (or .png) read into a small uint8 array,
and the frozen features of a pretrained vision model.

Paper 001 learns visual features with a CNN over posters; paper 000 fuses ViT poster
features with text. No posters ship with MovieLens, so `load_posters` reads whatever
folder the user names, resizes each image to ``size`` x ``size`` RGB, and reports
which movies have one (the rest get the "no poster" mask, never a black image
pretending to be one).

`ImageEncoder` runs a pretrained vision model that the user keeps in a local folder
(a Hugging Face model saved with ``save_pretrained``: ``config.json`` and
``model.safetensors``; ViT, DeiT, DINOv2, CLIP / SigLIP, ResNet, ConvNeXt ... anything
``transformers.AutoModel`` loads that takes ``pixel_values``). Nothing is downloaded.
Each poster is resized to the model's ``image_size`` (no crop: a poster is already
framed), scaled to [0, 1] and normalised by the folder's ``preprocessor_config.json``
mean and std (ImageNet's when absent); the feature is the model's pooled output
(``get_image_features`` for CLIP-style models, ``pooler_output``, else the mean of the
last hidden states). `ImageEncoder.encode_posters_cached` keeps the features in the
cache folder keyed by the model's files and the poster files, so a second run does not
re-encode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cinerec.errors import ConfigError, DataFormatError
from cinerec.features.encoded import LocalModel, cached_arrays, offline_transformers

_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def poster_files(folder: str | Path) -> dict[str, Path]:
    """``{movieId as text: path}`` of the image files in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"poster folder {folder} does not exist")
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES}


def read_posters(files: dict[str, Path], movie_ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(len(movie_ids), 3, size, size) uint8 images and the has-a-poster mask, from
    ``files`` (`poster_files`). A file that is not a readable image raises
    `DataFormatError` naming it."""
    from PIL import Image, UnidentifiedImageError

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


def load_posters(folder: str | Path, movie_ids: np.ndarray, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(len(movie_ids), 3, size, size) uint8 images and a bool mask of movies that have
    one, from ``folder/<movieId>.<jpg|png|...>``."""
    return read_posters(poster_files(folder), movie_ids, size)


class ImageEncoder(LocalModel):
    """Frozen pooled features of a pretrained vision model in a local folder."""

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 32):
        p = Path(path)
        if not (p / "config.json").is_file():
            raise ConfigError(f"{p} is not a vision model folder (no config.json; save one with save_pretrained)")
        if not any((p / w).is_file() for w in ("model.safetensors", "model.safetensors.index.json")):
            raise ConfigError(f"{p} holds no model.safetensors weights")
        super().__init__(p, device)
        self.batch_size = batch_size

    def _load(self) -> Any:
        if self._model is None:
            offline_transformers("pip install 'cinerec[content]'")
            from transformers import AutoModel

            try:
                model = AutoModel.from_pretrained(str(self.path), local_files_only=True, use_safetensors=True)
            except (OSError, ValueError, KeyError) as e:
                raise ConfigError(f"{self.path}: not a vision model transformers can load ({e})") from None
            self._model = model.to(self.device).eval()
        return self._model

    @property
    def image_size(self) -> int:
        """The side the model reads (its config's ``image_size``; 224 when it has none)."""
        config = self._load().config
        size = getattr(getattr(config, "vision_config", config), "image_size", None) or 224
        if isinstance(size, (list, tuple)):
            size = size[0]
        if isinstance(size, dict):
            size = size.get("height") or size.get("shortest_edge") or 224
        return int(size)

    def _normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        pre = self.path / "preprocessor_config.json"
        if pre.is_file():
            d = json.loads(pre.read_text())
            mean, std = d.get("image_mean", mean), d.get("image_std", std)
        return (np.asarray(mean, np.float32).reshape(1, 3, 1, 1), np.asarray(std, np.float32).reshape(1, 3, 1, 1))

    def pixel_values(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, 3, S, S) at the model's size -> the normalised float input."""
        mean, std = self._normalisation()
        return (images.astype(np.float32) / 255.0 - mean) / std

    def features(self, images: np.ndarray) -> np.ndarray:
        """(B, dim) float32 pooled features of uint8 (B, 3, S, S) images."""
        import torch

        model = self._load()
        out = []
        with torch.no_grad():
            for s in range(0, images.shape[0], self.batch_size):
                x = torch.as_tensor(self.pixel_values(images[s : s + self.batch_size]), device=self.device)
                out.append(_pooled(model, x).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        size = self.image_size
        return int(self.features(np.zeros((1, 3, size, size), np.uint8)).shape[1]) if size else 0

    def encode_posters(self, folder: str | Path, movie_ids: np.ndarray,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(len(movie_ids), dim) features (zeros where a movie has no poster) and the
        has-a-poster mask; posters are read and encoded a chunk at a time (a progress bar
        on stderr when ``progress``)."""
        from cinerec._util import console

        files, size = poster_files(folder), self.image_size
        ids = np.asarray(movie_ids)
        feats: np.ndarray | None = None
        has = np.zeros(ids.shape[0], dtype=bool)
        chunk = self.batch_size * 8
        with console.progress(progress) as bar:
            task = bar.add_task("encoding posters", total=ids.shape[0])
            for s in range(0, ids.shape[0], chunk):
                imgs, h = read_posters(files, ids[s : s + chunk], size)
                has[s : s + chunk] = h
                if h.any():
                    f = self.features(imgs[h])
                    if feats is None:
                        feats = np.zeros((ids.shape[0], f.shape[1]), dtype=np.float32)
                    feats[s : s + chunk][h] = f
                bar.advance(task, min(chunk, ids.shape[0] - s))
        if feats is None:
            feats = np.zeros((ids.shape[0], self.dim), dtype=np.float32)
        return feats, has

    def encode_posters_cached(self, folder: str | Path, movie_ids: np.ndarray,
                              progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """`encode_posters` through the cache folder, keyed by the model's files and the
        poster files (name, size, mtime) of the movies asked for."""
        files = poster_files(folder)
        key = [self.fingerprint.encode()]
        for mid in np.asarray(movie_ids).tolist():
            p = files.get(str(mid))
            st = p.stat() if p is not None else None
            key.append(f"{mid}:{st.st_size}:{st.st_mtime_ns}".encode() if st else f"{mid}:-".encode())

        def compute() -> dict[str, np.ndarray]:
            feats, has = self.encode_posters(folder, movie_ids, progress=progress)
            return {"features": feats, "has": has}

        arrays, report = cached_arrays("image", key, len(movie_ids), compute)
        return arrays["features"], arrays["has"].astype(bool), report


def _pooled(model: Any, x: Any) -> Any:
    """One image vector per row: CLIP-style ``get_image_features``, else the pooled
    output, else the mean of the last hidden states (any trailing spatial dims averaged)."""
    if hasattr(model, "get_image_features"):
        out = model.get_image_features(pixel_values=x)
    else:
        out = model(pixel_values=x)
    if not hasattr(out, "shape"):  # a model output, not a tensor
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = getattr(out, "image_embeds", None)
        if pooled is None:
            h = out.last_hidden_state  # (B, tokens, d) or (B, C, H, W)
            pooled = h.mean(dim=(2, 3)) if h.dim() == 4 else h.mean(dim=1)
        out = pooled
    return out.flatten(1) if out.dim() > 2 else out
