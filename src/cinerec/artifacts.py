"""Model artifacts: self-contained folders, enough to serve a model with no data home.

Layout (format 2)::

    manifest.json      format, kind, model, created, versions, provenance (data, data
                       fingerprint, split, seed), metrics, sizes, and every file's
                       byte count and sha256
    config.json        format, model, hyper-parameters, extra (compression spec)
    model.safetensors  the model's arrays and the base statistics (counts, baselines,
                       each user's seen items and ratings as CSR, item sigma/confidence)
    ids.safetensors    raw user and item ids (int64; index i <-> ids[i])
    items.parquet      the item table: item, movieId, title, year, genres, imdbId, tmdbId

Never pickle. `save_model` writes through `cinerec._util.fs.atomic_dir`: it refuses a
path that holds anything but a cinerec artifact, replaces an artifact only with
``overwrite=True``, and swaps the new folder in so a kill leaves the old or the new
artifact, never neither. `load_model` verifies everything it reads (file presence,
sizes, checksums, JSON shapes, the model name in config, manifest and weights, array
shapes and finiteness) and turns each problem into one `ArtifactError` that says what
is wrong. Format-1 artifacts (before ids and item tables) still load: their run options
are dropped from the config, and `upgrade_artifact` rewrites them as format 2.

This module sits above `models` and `compress` (it needs both to rebuild a compressed
model), so models never import compression.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from cinerec._util import fs
from cinerec.data.catalogue import Catalogue
from cinerec.data.dataset import IdMap
from cinerec.errors import ArtifactError, CinerecError, ConfigError, UnknownModel
from cinerec.models.base import Recommender
from cinerec.models.registry import model_class
from cinerec.train.options import RUN_OPTION_NAMES, FitOptions, fit_options

FORMAT_VERSION = 2
KIND = "cinerec-model"
FILES = ("config.json", "model.safetensors", "ids.safetensors", "items.parquet")
_CHUNK = 1 << 22

#: The top-level keys of config.json.
CONFIG_KEYS = frozenset({"format", "model", "config", "extra"})


def _versions() -> dict[str, str]:
    """Versions of what made the artifact (from package metadata: no torch import)."""
    import cinerec

    out = {"cinerec": cinerec.__version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "torch", "safetensors"):
        out[dist] = metadata.version(dist)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a cinerec manifest (any format)."""
    f = Path(path) / "manifest.json"
    try:
        d = json.loads(f.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and "model" in d and "format" in d


def check_output(path: str | Path, overwrite: bool = False) -> None:
    """Fail now (before training) if `save_model` would refuse ``path``."""
    fs.check_target(Path(path), is_artifact, overwrite)


# ---- saving -----------------------------------------------------------------------------
def save_model(
    model: Recommender,
    path: str | Path,
    *,
    catalogue: Catalogue | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (fitted) as an artifact folder at ``path``; see the module doc."""
    path = Path(path)
    catalogue = catalogue if catalogue is not None else getattr(model, "catalogue", None)
    if catalogue is None:
        raise ArtifactError(
            f"cannot save {model.name!r} without its catalogue (id maps): fit it on a Dataset, "
            "or pass catalogue=Catalogue.from_dataset(dataset)"
        )
    if catalogue.n_users != model.n_users_ or catalogue.n_items != model.n_items_:
        raise ArtifactError(
            f"the catalogue ({catalogue.n_users} users, {catalogue.n_items} items) does not "
            f"match the model ({model.n_users_} users, {model.n_items_} items)"
        )
    arrays = {k: np.ascontiguousarray(v) for k, v in model.state().items()}
    config = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "config": model.config.model_dump(mode="json"),
        "extra": model.artifact_extra(),
    }
    with fs.atomic_dir(path, owned=is_artifact, overwrite=overwrite) as tmp:
        save_file(arrays, str(tmp / "model.safetensors"),
                  metadata={"cinerec_model": model.name, "format": str(FORMAT_VERSION)})
        save_file(_id_arrays(catalogue), str(tmp / "ids.safetensors"))
        if catalogue.items is not None:
            catalogue.items.write_parquet(tmp / "items.parquet")
        (tmp / "config.json").write_text(json.dumps(config, indent=2, allow_nan=False))
        files = {
            f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)}
            for f in sorted(tmp.iterdir())
        }
        manifest = {
            "format": FORMAT_VERSION,
            "kind": KIND,
            "model": model.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
            "provenance": model.provenance,
            "metrics": _json_safe(metrics or {}),
            "sizes": {"n_users": model.n_users_, "n_items": model.n_items_},
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str, allow_nan=False))
    return path


def _id_arrays(catalogue: Catalogue) -> dict[str, np.ndarray]:
    out = {}
    for name, ids in (("user_ids", catalogue.user_ids.ids), ("item_ids", catalogue.item_ids.ids)):
        if not np.issubdtype(ids.dtype, np.integer):
            raise ArtifactError(f"{name} must be integers to be stored, got {ids.dtype}")
        out[name] = np.ascontiguousarray(ids, dtype=np.int64)
    return out


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ---- reading ----------------------------------------------------------------------------
def _read_json(path: Path, name: str) -> dict[str, Any]:
    f = path / name
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"{path} is not a complete cinerec model folder: {name} is missing "
            "(train one with `cinerec train MODEL --out DIR`)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"{f} is not valid JSON ({e}); the artifact is damaged: re-save it") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{f} must hold a JSON object, got {type(data).__name__}; the artifact is damaged")
    return data


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of an artifact folder (validated to be a cinerec manifest)."""
    path = Path(path)
    fs.recover(path)  # a writer killed between its two renames left the old folder aside
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a cinerec model folder (no such folder)")
    manifest = _read_json(path, "manifest.json")
    fmt = manifest.get("format")
    if fmt not in (1, FORMAT_VERSION):
        raise ArtifactError(
            f"{path}: artifact format {fmt!r} is not supported (this cinerec reads 1 and "
            f"{FORMAT_VERSION}); was it written by a newer cinerec?"
        )
    if not isinstance(manifest.get("model"), str):
        raise ArtifactError(f"{path}/manifest.json does not name its model")
    for key in ("provenance", "metrics"):
        if not isinstance(manifest.get(key, {}), dict):
            raise ArtifactError(f"{path}/manifest.json: {key!r} must be an object")
    return manifest


def _verify_files(path: Path, manifest: dict[str, Any], checksums: bool) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path}/manifest.json lists no files; the artifact is damaged")
    for name, info in files.items():
        f = path / name
        if not f.is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing")
        if not isinstance(info, dict):
            raise ArtifactError(f"{path}/manifest.json: the entry of {name} is not an object")
        if f.stat().st_size != info.get("bytes"):
            raise ArtifactError(
                f"{f} has {f.stat().st_size} bytes but the manifest recorded {info.get('bytes')}: "
                "the file was truncated or replaced"
            )
        if checksums and _sha256(f) != info.get("sha256"):
            raise ArtifactError(f"{f} does not match its checksum in the manifest: the file is damaged")


def _read_safetensors(f: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if not f.is_file():
        raise ArtifactError(f"{f.parent} is not a complete cinerec model folder: {f.name} is missing")
    try:
        with safe_open(str(f), framework="np") as st:
            meta = st.metadata() or {}
            arrays = {k: st.get_tensor(k) for k in st.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError, TypeError, MemoryError) as e:
        raise ArtifactError(f"{f} is not a readable safetensors file ({e}); the artifact is damaged") from None
    return arrays, meta


def load_catalogue(path: str | Path) -> Catalogue | None:
    """The artifact's catalogue (None for format-1 artifacts, which have none)."""
    path = Path(path)
    ids_file = path / "ids.safetensors"
    if not ids_file.is_file():
        return None
    arrays, _ = _read_safetensors(ids_file)
    if set(arrays) != {"user_ids", "item_ids"}:
        raise ArtifactError(f"{ids_file} must hold user_ids and item_ids, has {sorted(arrays)}")
    for name, ids in arrays.items():
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (np.diff(ids) <= 0).any():
            raise ArtifactError(f"{ids_file}: {name} must be strictly increasing integers")
    items = None
    if (path / "items.parquet").is_file():
        try:
            items = pl.read_parquet(path / "items.parquet")
        except (pl.exceptions.PolarsError, OSError) as e:
            raise ArtifactError(f"{path / 'items.parquet'} is not readable ({e})") from None
        if items.height != arrays["item_ids"].shape[0]:
            raise ArtifactError(f"{path / 'items.parquet'} has {items.height} rows for {arrays['item_ids'].shape[0]} items")
    return Catalogue(user_ids=IdMap(arrays["user_ids"]), item_ids=IdMap(arrays["item_ids"]), items=items)


def load_model(
    path: str | Path, *, options: FitOptions | dict | None = None, verify: bool = True
) -> Recommender:
    """Load an artifact folder written by `save_model` (any registered model).

    ``options`` are run options for the loaded model (e.g. ``{"device": "cuda"}``);
    ``verify=False`` skips the checksums (sizes and structure are always checked).
    """
    path = Path(path)
    manifest = read_manifest(path)
    fmt = manifest["format"]
    if fmt == FORMAT_VERSION:
        _verify_files(path, manifest, checksums=verify)
    config = _read_json(path, "config.json")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ArtifactError(f"{path}/config.json has unknown keys {unknown}; was it edited by hand?")
    if config.get("format", fmt) != fmt:
        raise ArtifactError(
            f"{path}: config.json says format {config.get('format')!r} but manifest.json says {fmt!r}"
        )
    name = config.get("model")
    if not isinstance(name, str):
        raise ArtifactError(f"{path}/config.json does not say which model it holds (no \"model\")")
    if name != manifest["model"]:
        raise ArtifactError(f"{path}: config.json holds {name!r} but manifest.json says {manifest['model']!r}")
    params = config.get("config", {})
    if not isinstance(params, dict):
        raise ArtifactError(f"{path}/config.json: \"config\" must be an object of hyper-parameters")
    extra = config.get("extra", {}) or {}
    if not isinstance(extra, dict):
        raise ArtifactError(f"{path}/config.json: \"extra\" must be an object")
    if fmt == 1:  # run options were part of the config then
        params = {k: v for k, v in params.items() if k not in RUN_OPTION_NAMES}
    try:
        model = model_class(name)(params)
    except UnknownModel as e:
        raise ArtifactError(f"{path}: {e}") from None
    except ConfigError as e:
        raise ArtifactError(f"{path}/config.json: {e}") from None
    arrays, meta = _read_safetensors(path / "model.safetensors")
    if meta.get("cinerec_model", name) != name:
        raise ArtifactError(
            f"{path}/model.safetensors holds the weights of {meta['cinerec_model']!r}, not {name!r}"
        )
    _check_finite(path, arrays)
    model.options_ = fit_options(options)
    model.apply_artifact_extra(extra)
    try:
        tables = _tables_for_load(model, model.compression)
        model.load_state(arrays, tables)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None
    except (KeyError, ValueError, RuntimeError, IndexError, TypeError) as e:
        raise ArtifactError(f"{path}: the weights do not fit the config of {name!r} ({e})") from None
    model.provenance = manifest.get("provenance", {})
    model.catalogue = load_catalogue(path)
    _check_consistency(path, model, manifest)
    return model


def _tables_for_load(model: Recommender, spec: dict[str, Any] | None) -> dict[str, Any]:
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise ArtifactError("the compression spec in config.json must be an object")
    from cinerec.compress.codecs import empty_tables

    try:
        return empty_tables(model, spec)
    except CinerecError as e:
        raise ArtifactError(str(e)) from None


def _check_finite(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for key, v in arrays.items():
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
            raise ArtifactError(
                f"{path}/model.safetensors: array {key!r} contains NaN or infinity; the model "
                "diverged or the file is damaged: retrain it"
            )


def _check_consistency(path: Path, model: Recommender, manifest: dict[str, Any]) -> None:
    sizes = manifest.get("sizes")
    if isinstance(sizes, dict) and (sizes.get("n_users"), sizes.get("n_items")) != (model.n_users_, model.n_items_):
        raise ArtifactError(
            f"{path}: the manifest records {sizes} but the weights hold "
            f"{model.n_users_} users and {model.n_items_} items"
        )
    cat = model.catalogue
    if cat is not None and (cat.n_users, cat.n_items) != (model.n_users_, model.n_items_):
        raise ArtifactError(
            f"{path}: ids.safetensors has {cat.n_users} users / {cat.n_items} items, the weights "
            f"{model.n_users_} / {model.n_items_}"
        )
    try:
        model.check_state()
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None


def artifact_bytes(path: str | Path) -> int:
    """Bytes on disk of an artifact folder."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def upgrade_artifact(path: str | Path, catalogue: Catalogue, seen_ratings: np.ndarray | None = None) -> Path:
    """Rewrite a format-1 artifact as format 2 with ``catalogue`` (and, when given, the
    training ratings aligned with its seen-items CSR, for fold-in of known users)."""
    model = load_model(path)
    if seen_ratings is not None:
        if seen_ratings.shape != model.seen_indices_.shape:
            raise ArtifactError("the training ratings do not match the artifact's seen items")
        model.seen_ratings_ = seen_ratings.astype(np.float32)
    return save_model(model, path, catalogue=catalogue, metrics=read_manifest(path).get("metrics"), overwrite=True)
