"""Exact-substring pieces on plain strings: tokenizers, window hashes, spans, cutting, the reference."""
from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.core.config import DedupExactConfig
from udfs.collisions import colliding_pairs
from udfs.dochash import expected_false_text_pairs, normalize_text, text_hash
from udfs.exact_reference import reference_dedup
from udfs.exact_substring import (char_ranges, cut, cut_repeats, doc_order_key, expected_false_windows, merge_spans,
                                  tokenize, tokens_regex, window_hashes)

ALPHABET = list("ab ,.!\n\t_1é") + ["日", "本", "語", "で", "한", "ก", "\u3000", "\u0085", "\u00a0", "\ud800",
                                      "\U0001F600", "\u0301", "\U00020001", "ｱ"]


def toks(text, tokenizer="word"):
    s, e = tokenize(text, tokenizer)
    return [text[a:b] for a, b in zip(s.tolist(), e.tolist())]


def test_word_tokenizer():
    assert toks("Hello, world! foo_bar 42 naïve") == ["Hello", ",", "world", "!", "foo_bar", "42", "naïve"]
    # scripts without spaces: one token a character; Hangul keeps its words
    assert toks("日本語です。") == ["日", "本", "語", "で", "す", "。"]
    assert toks("中文abc") == ["中", "文", "abc"]
    assert toks("한국어 문장") == ["한국어", "문장"]
    assert toks("ภาษาไทย") == list("ภาษาไทย")


def test_whitespace_tokenizer_keeps_cjk_runs_whole():
    assert toks("Hello, world!  日本語です。\n x", "whitespace") == ["Hello,", "world!", "日本語です。", "x"]


@pytest.mark.parametrize("tokenizer", ["word", "whitespace"])   # BPE's reference is its own function
def test_vectorized_tokenizer_equals_regex(tokenizer):
    rng = random.Random(7)
    for _ in range(3000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        starts, ends = tokenize(s, tokenizer)
        assert list(zip(starts.tolist(), ends.tolist())) == tokens_regex(s, tokenizer), repr(s)


def test_window_hashes_match_token_windows():
    rng = random.Random(3)
    vocab = ["a", "b", "c", "dd", "日", ",", "e_f"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30))) for _ in range(60)] + [None, ""]
    k = 3
    doc, pos, h, n_tokens = window_hashes(texts, k)
    assert n_tokens.tolist() == [len(toks(t or "")) for t in texts]
    assert len(h) == sum(max(0, n - k + 1) for n in n_tokens.tolist())
    by_hash: dict[int, set] = {}
    for d, p, x in zip(doc.tolist(), pos.tolist(), h.tolist()):
        w = tuple(toks(texts[d])[p:p + k])
        by_hash.setdefault(x, set()).add(w)
    assert all(len(ws) == 1 for ws in by_hash.values()), "two different windows share a hash"
    windows = {tuple(toks(t or "")[p:p + k]) for t in texts for p in range(len(toks(t or "")) - k + 1)}
    assert len(by_hash) == len(windows), "one window got two hashes"


def test_window_hashes_do_not_depend_on_batching():
    texts = ["one two three four five", "x y z", "two three four five six"]
    together = window_hashes(texts, 3)[2]
    alone = np.concatenate([window_hashes([t], 3)[2] for t in texts])
    assert together.tolist() == alone.tolist()
    assert len(set(window_hashes(["w " * 10_000], 2)[2].tolist())) == 1   # one window repeated, one hash


def test_hashes_are_64_bit_and_spread():
    rng = random.Random(1)
    words = [f"w{i}" for i in range(5000)]
    seq = [rng.choice(words) for _ in range(20_000)]
    h = window_hashes([" ".join(seq)], 2)[2]
    distinct = len(set(zip(seq, seq[1:])))
    assert h.dtype == np.int64 and len(set(h.tolist())) == distinct  # no collisions among ~20k windows
    bits = np.unpackbits(h.view(np.uint8)).reshape(len(h), 64).mean(axis=0)
    assert np.all(np.abs(bits - 0.5) < 0.03), "every hash bit is set about half the time"


def test_128_bit_window_hashes_extend_the_64_bit_ones():
    texts = ["one two three four five", "x y z", "two three four five six", None]
    doc, pos, h64, n = window_hashes(texts, 3)
    doc2, pos2, h128, n2 = window_hashes(texts, 3, bits=128)
    assert h128.shape == (len(h64), 2) and h128.dtype == np.int64
    assert doc.tolist() == doc2.tolist() and pos.tolist() == pos2.tolist() and n.tolist() == n2.tolist()
    assert h128[:, 0].tolist() == h64.tolist()                      # the first half is the 64-bit hash
    assert len(set(h128[:, 1].tolist()) & set(h64.tolist())) == 0   # the second is another hash
    by_window = {tuple(toks(texts[d])[p:p + 3]): tuple(x) for d, p, x in zip(doc2, pos2, h128.tolist())}
    assert by_window[("two", "three", "four")] == tuple(h128[1].tolist()) == tuple(h128[4].tolist())
    assert window_hashes([None], 3, bits=128)[2].shape == (0, 2)
    with pytest.raises(ValueError, match="64 or 128"):
        window_hashes(texts, 3, bits=96)


def test_expected_false_windows_is_the_birthday_bound():
    assert expected_false_windows(1e12, 64) == pytest.approx(1e12 * (1e12 - 1) / 2 / 2 ** 64)
    assert expected_false_windows(1e12, 64) == pytest.approx(27_105, rel=1e-4)       # 10^9 docs x 1,000 tokens
    assert expected_false_windows(1e13, 64) == pytest.approx(2.7105e6, rel=1e-4)
    assert expected_false_windows(1e13, 128) == pytest.approx(1.469e-13, rel=1e-3)
    assert expected_false_text_pairs(1e10) == pytest.approx(1e10 * (1e10 - 1) / 2 / 2 ** 128)


def _truncated(h: np.ndarray, bits: int) -> np.ndarray:
    """A 64-bit hash cut to its low ``bits``; a 128-bit one to ``bits // 2`` of each half (so the count below only
    matches the prediction when the halves are independent)."""
    u = h.view(np.uint64)
    if u.ndim == 1:
        return u & np.uint64((1 << bits) - 1)
    half = np.uint64((1 << (bits // 2)) - 1)
    return ((u[:, 0] & half) << np.uint64(bits // 2)) | (u[:, 1] & half)


@pytest.mark.parametrize("bits", [64, 128])
def test_truncated_window_hash_collisions_match_the_prediction(bits):
    rng = random.Random(7)
    words = [f"w{rng.randrange(10 ** 9)}" for _ in range(30_000)]
    doc, pos, h, _ = window_hashes([" ".join(words)], 3, bits=bits)
    distinct = {tuple(words[p:p + 3]): i for i, p in enumerate(pos.tolist())}   # one occurrence per window
    keys = _truncated(h[list(distinct.values())], 20)
    expected = expected_false_windows(len(distinct), 20)                        # ~430 at 30k windows
    assert abs(colliding_pairs(keys) - expected) < 4 * expected ** 0.5


def test_truncated_text_hash_collisions_match_the_prediction():
    n = 3000
    keys = [int.from_bytes(text_hash(f"document number {i}")[:2], "big") for i in range(n)]   # 16 bits
    expected = expected_false_text_pairs(n, 16)                                              # ~69
    assert abs(colliding_pairs(keys) - expected) < 4 * expected ** 0.5


def test_merge_spans():
    assert merge_spans([], 3) == []
    assert merge_spans([0], 3) == [(0, 3)]
    assert merge_spans([5, 0, 1], 3) == [(0, 4), (5, 8)]
    assert merge_spans([0, 3], 3) == [(0, 6)]            # touching ranges merge
    assert merge_spans([0, 4, 4, 2], 3) == [(0, 7)]       # overlapping, repeated


def test_cut_seams():
    text = "aa bb cc dd ee"
    s, e = tokenize(text)
    def go(spans):
        return cut(text, char_ranges(len(text), s, e, spans))
    assert go([(1, 2)]) == "aa cc dd ee"        # middle: the following space goes too
    assert go([(0, 2)]) == "cc dd ee"            # start
    assert go([(3, 5)]) == "aa bb cc"            # end: the preceding space goes too
    assert go([(0, 5)]) == ""                    # everything
    assert go([(0, 1), (4, 5)]) == "bb cc dd"
    assert cut("  lead", char_ranges(6, *tokenize("  lead"), [(0, 1)])) == "  "


def test_cut_repeats_verdicts():
    text = "keep these words and cut w1 w2 w3 w4 w5"
    new, v = cut_repeats(text, [5], 5)
    assert new == "keep these words and cut" and v.keep and v.scores["exact_removed_chars"] == len(text) - len(new)
    new, v = cut_repeats(text, [5], 5, min_tokens=6)
    assert not v.keep and v.reason == "exact_substring_removed" and v.scores["tokens_left"] == 5
    new, v = cut_repeats("w1 w2 w3", [0], 3)
    assert new == "" and v.reason == "exact_substring_removed"      # became empty
    new, v = cut_repeats("tiny", [], 3, min_chars=100, min_tokens=100)
    assert v.keep and new == "tiny"                                  # nothing cut: never dropped here


def test_doc_order_key_and_text_hash():
    assert doc_order_key("a", "x") == doc_order_key("a", "x")
    assert doc_order_key("a", "x") != doc_order_key("a", "y") != doc_order_key("b", "x")
    k1, k2 = doc_order_key("id", "text")
    assert -2 ** 63 <= k1 < 2 ** 63 and -2 ** 31 <= k2 < 2 ** 31
    assert normalize_text("  A\n\tb  c ") == "A b c"
    assert text_hash("A  b") == text_hash("A b\n") != text_hash("a b")
    assert text_hash("A b", casefold=True) == text_hash("a B", casefold=True)


def _cfg(**kw) -> DedupExactConfig:
    return DedupExactConfig(**{"k": 3, "min_tokens_after_cut": 0, **kw})


def test_reference_span_in_three_docs_is_kept_once():
    span = "p q r s t"
    docs = [{"id": f"d{i}", "url": None, "text": f"own{i} words{i} {span} tail{i}"} for i in range(3)]
    res = reference_dedup(docs, _cfg())
    keeper = min(docs, key=lambda d: doc_order_key(d["id"], d["text"]))["id"]
    for d in docs:
        r = res[d["id"]]
        assert r.reason is None
        assert (span in r.text) == (d["id"] == keeper)


def test_reference_repeat_inside_one_doc_and_steps():
    docs = [{"id": "a", "url": "http://e.com/x", "warc_date": "2024", "text": "u v w x y u v w x y z"},
            {"id": "b", "url": "https://E.com/x/", "warc_date": "2023", "text": "other"},
            {"id": "c", "url": None, "warc_date": None, "text": "u  v w x y u v w x y z"}]
    res = reference_dedup(docs, _cfg())
    assert res["b"].reason == "duplicate_url"
    assert res["c"].reason == "duplicate_text"
    assert res["a"].text == "u v w x y z" and res["a"].removed_chars == 10
