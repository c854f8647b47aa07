"""Model artifacts: a folder with config.json, model.safetensors and manifest.json.

Never pickle: arrays go to safetensors, everything else is JSON. A folder is written
to a temporary sibling and renamed into place, so an interrupted save never leaves
something that later loads.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import load_file, save_file

from cinerec.errors import ArtifactError

if TYPE_CHECKING:
    from cinerec.models.base import Recommender

FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    import cinerec

    out = {"cinerec": cinerec.__version__, "python": platform.python_version(), "numpy": np.__version__}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return out


def save_model(model: Recommender, path: Path, metrics: dict[str, Any] | None = None) -> Path:
    arrays = {k: np.ascontiguousarray(v) for k, v in model.state().items()}
    config = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "config": model.config.model_dump(mode="json"),
        "extra": model.artifact_extra(),
    }
    manifest = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "provenance": model.provenance,
        "metrics": metrics or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(arrays, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    f = Path(path) / "manifest.json"
    if not f.exists():
        raise ArtifactError(f"{path} is not a cinerec model folder (no manifest.json)")
    return json.loads(f.read_text())


def load_model(path: Path) -> Recommender:
    from cinerec.models.base import model_class

    path = Path(path)
    for name in ("config.json", "model.safetensors", "manifest.json"):
        if not (path / name).exists():
            raise ArtifactError(
                f"{path} is not a complete cinerec model folder: {name} is missing "
                "(train one with `cinerec train MODEL --out DIR`)"
            )
    config = json.loads((path / "config.json").read_text())
    if config.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format {config.get('format')} is not supported")
    model = model_class(config["model"])(config["config"])
    model.apply_artifact_extra(config.get("extra", {}))
    model.load_state(load_file(str(path / "model.safetensors")))
    model.provenance = read_manifest(path).get("provenance", {})
    return model


def artifact_bytes(path: Path) -> int:
    """Bytes on disk of an artifact folder."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
