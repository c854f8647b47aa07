"""`ImageEncoder`: a pretrained vision model from a local folder (never downloaded),
tested on tiny models with random weights that the test saves with save_pretrained."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cinerec.errors import ConfigError, DataFormatError
from cinerec.features.images import ImageEncoder, load_posters

transformers = pytest.importorskip("transformers", reason="the content extra installs transformers")
import torch  # noqa: E402

TINY = {"image_size": 32, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32}  # fmt: skip


def _vit(folder: Path, **preprocessor: object) -> Path:
    torch.manual_seed(0)
    transformers.ViTModel(transformers.ViTConfig(**TINY)).save_pretrained(folder)
    if preprocessor:
        import json

        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


def _posters(folder: Path, ids: list[int], skip: set[int]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for mid in ids:
        if mid not in skip:
            Image.fromarray(rng.integers(0, 255, (40, 28, 3), dtype=np.uint8)).save(folder / f"{mid}.png")


def test_features_are_the_models_pooled_output_of_the_normalised_poster(tmp_path: Path) -> None:
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    enc = ImageEncoder(_vit(tmp_path / "vit", image_mean=mean, image_std=std))
    _posters(tmp_path / "p", [1, 2, 3], skip={2})
    feats, has = enc.encode_posters(tmp_path / "p", np.array([1, 2, 3, 9]))
    assert feats.shape == (4, 16) and feats.dtype == np.float32
    np.testing.assert_array_equal(has, [True, False, True, False])
    assert not feats[~has].any()  # no poster: zeros and the mask, not a black image's features
    # the same numbers straight from transformers, preprocessing written out by hand
    imgs, _ = load_posters(tmp_path / "p", np.array([1, 3]), size=32)
    x = (imgs / 255.0 - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    model = transformers.ViTModel.from_pretrained(tmp_path / "vit").eval()
    with torch.no_grad():
        want = model(pixel_values=torch.as_tensor(x, dtype=torch.float32)).pooler_output.numpy()
    np.testing.assert_allclose(feats[has], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["resnet", "clip"])
def test_other_vision_families_give_one_vector_per_image(kind: str, tmp_path: Path) -> None:
    if kind == "resnet":
        model = transformers.ResNetModel(transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1]))
        dim = 12
    else:  # a full CLIP model: its projected image embedding
        text = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
        model = transformers.CLIPModel(transformers.CLIPConfig(vision_config=TINY, text_config=text, projection_dim=6))
        dim = 6
    model.save_pretrained(tmp_path / kind)
    enc = ImageEncoder(tmp_path / kind)
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 255, (5, 3, enc.image_size, enc.image_size), dtype=np.uint8)
    f = enc.features(imgs)
    assert f.shape == (5, dim) and np.isfinite(f).all()
    assert np.abs(f[0] - f[1]).max() > 1e-6  # different images, different vectors
    np.testing.assert_allclose(enc.features(imgs[2:3]), f[2:3], rtol=1e-4, atol=1e-5)  # batching changes nothing


def test_cache_hits_then_misses_when_a_poster_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    enc = ImageEncoder(_vit(tmp_path / "vit"))
    _posters(tmp_path / "p", [1, 2], skip=set())
    ids = np.array([1, 2])
    first, has, info = enc.encode_posters_cached(tmp_path / "p", ids)
    assert info["cached"] is False and has.all()
    second, has2, info2 = ImageEncoder(tmp_path / "vit").encode_posters_cached(tmp_path / "p", ids)
    assert info2["cached"] is True
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(has2, has)
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "p" / "2.png")
    st = (tmp_path / "p" / "2.png").stat()
    os.utime(tmp_path / "p" / "2.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third, _, info3 = enc.encode_posters_cached(tmp_path / "p", ids)
    assert info3["cached"] is False
    np.testing.assert_allclose(third[0], first[0], rtol=1e-5, atol=1e-6)
    assert np.abs(third[1] - first[1]).max() > 1e-6


def test_folders_that_are_not_a_vision_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        ImageEncoder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="safetensors"):
        ImageEncoder(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="transformers can load"):
        ImageEncoder(tmp_path).features(np.zeros((1, 3, 8, 8), np.uint8))


def test_a_broken_poster_is_named(tmp_path: Path) -> None:
    enc = ImageEncoder(_vit(tmp_path / "vit"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "5.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match="5.jpg"):
        enc.encode_posters(tmp_path / "p", np.array([5]))
