"""MinHash on plain strings: normalization, shingles, the short-document rule, signatures vs exact Jaccard, S-curve."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path
from udfs.collisions import colliding_pairs
from udfs.minhash import (PRESETS, MinHasher, MinHashParams, catch_probability, expected_false_merges, jaccard,
                          minhasher, normalize, resolve_params, shingle_set, shingles, threshold_50, word_hashes)


def _articles(n: int = 40) -> list[str]:
    path = shared_path("groundtruth", "news-articles-181.jsonl")
    rows = [json.loads(line)["article_body"] for line in path.open()]
    return [r for r in rows if len(r.split()) >= 300][:n]


def _edit(text: str, rate: float, rng: random.Random) -> str:
    return " ".join(w if rng.random() > rate else f"w{rng.randrange(10**9)}" for w in text.split())


def test_normalize_lowercases_drops_punctuation_collapses_spaces():
    assert normalize("  Hello,   WORLD!\n\tIt's  a_b (test) -- 3.5 €  ") == "hello world its ab test 35"
    assert normalize("...!?") == ""
    assert normalize("Élan VITAL") == "élan vital"


def test_word_hashes_equal_words_equal_hashes():
    h = word_hashes("the cat the dog cat")
    assert h.dtype == np.uint64 and h.size == 5
    assert h[0] == h[2] and h[1] == h[4] and len(set(h.tolist())) == 3
    assert word_hashes("ab ba")[0] != word_hashes("ab ba")[1]  # position inside the word matters


def test_shingles_count_and_punctuation_invariance():
    text = "one two three four five six seven"
    s = shingles(text, 5)
    assert s.dtype == np.uint32 and s.size == 3  # 7 words -> 3 five-grams
    assert np.array_equal(s, shingles("One, two; THREE four -- five six seven!", 5))
    assert np.array_equal(shingles("a b c d e a b c d e", 5), np.unique(shingles("a b c d e a b c d e", 5)))
    assert shingles("a b c d e a b c d e", 5).size == 5  # repeated n-grams count once


def test_short_and_empty_documents_rule():
    # no words: no shingles, so never a candidate
    for empty in ("", "   ", "!!! ... ---"):
        assert shingles(empty).size == 0
    # 1..n-1 words: one shingle, the whole sequence
    assert shingles("hello world").size == 1
    assert np.array_equal(shingles("Hello, world!"), shingles("hello world"))
    assert not np.array_equal(shingles("hello world"), shingles("hello there"))
    # a short document never shares its shingle with a longer one containing its words
    long = shingles("hello world hello world and more words here")
    assert not set(shingles("hello world").tolist()) & set(long.tolist())
    assert shingles("a b c d").size == 1 and shingles("a b c d e").size == 1
    assert shingle_set("a b") == {("a", "b")} and shingle_set("") == set()
    assert jaccard("", "") == 1.0 and jaccard("a b c d e f", "") == 0.0


def test_signature_matches_a_plain_python_reference():
    p = MinHashParams(num_hashes=64, bands=16, rows=4)
    mh = MinHasher(p, block=7)  # blocks smaller than the shingle count, to cover the loop
    ids = shingles("the quick brown fox jumps over the lazy dog and keeps running far away")
    sig = mh.signature(ids)
    ref = [min((int(a) * int(x) + int(b)) % 2**32 for x in ids) for a, b in zip(mh.a, mh.b)]
    assert sig.tolist() == ref
    assert mh.signature(np.zeros(0, np.uint32)).tolist() == [0xFFFFFFFF] * 64


def test_signatures_and_keys_are_deterministic_across_instances_and_processes():
    text = "Deterministic band keys are what make the stage's output independent of the executor. " * 3
    p = PRESETS["fineweb"]
    _, k1 = MinHasher(p).doc_band_keys([text])
    _, k2 = minhasher(p).doc_band_keys([text])
    assert k1.tolist() == k2.tolist() and k1.dtype == np.int64 and k1.size == p.bands
    code = ("from udfs.minhash import PRESETS, minhasher;"
            f"print(minhasher(PRESETS['fineweb']).doc_band_keys([{text!r}])[1].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert json.loads(out) == k1.tolist()
    # another seed gives other keys
    _, k3 = MinHasher(MinHashParams(112, 14, 8, seed=2)).doc_band_keys([text])
    assert not set(k3.tolist()) & set(k1.tolist())


def test_band_keys_differ_per_band_and_skip_empty_documents():
    p = MinHashParams(num_hashes=40, bands=10, rows=4)
    idx, keys = MinHasher(p).doc_band_keys(["", "some words that make a document of enough length", "...", None])
    assert idx.tolist() == [1] * 10 and len(set(keys.tolist())) == 10
    idx, keys = MinHasher(p).doc_band_keys(["", ""])
    assert idx.size == 0 and keys.size == 0


def test_share_of_equal_minima_estimates_exact_jaccard():
    """9000 hashes: the share of equal minima is within 4 standard errors of the exact Jaccard."""
    mh = minhasher(PRESETS["refinedweb"])
    rng = random.Random(7)
    checked = 0
    for text in _articles(12):
        other = _edit(text, rng.choice([0.01, 0.03, 0.08]), rng)
        j = jaccard(text, other)
        est = float(np.mean(mh.signature(shingles(text)) == mh.signature(shingles(other))))
        se = max(1e-3, (j * (1 - j) / 9000) ** 0.5)
        assert abs(est - j) < 4 * se + 0.002, (j, est)
        checked += 1
    assert checked >= 8


def test_band_collisions_follow_the_s_curve():
    """Pairs at J ~ 0.5 almost never share a refinedweb band; pairs at J ~ 0.9 nearly always do."""
    mh = minhasher(PRESETS["refinedweb"])
    rng = random.Random(3)
    for text in _articles(10):
        near = _edit(text, 0.005, rng)
        far = _edit(text, 0.12, rng)
        _, k = mh.doc_band_keys([text, near, far])
        kt, kn, kf = (set(k[i * 450:(i + 1) * 450].tolist()) for i in range(3))
        if jaccard(text, near) >= 0.85:
            assert kt & kn
        if jaccard(text, far) <= 0.5:
            assert not kt & kf


def test_presets_and_validation():
    assert PRESETS["refinedweb"].num_hashes == 9000 and PRESETS["refinedweb"].bands == 450
    assert PRESETS["refinedweb"].rows == 20 and PRESETS["refinedweb"].ngram == 5
    assert (PRESETS["fineweb"].num_hashes, PRESETS["fineweb"].bands, PRESETS["fineweb"].rows) == (112, 14, 8)
    assert PRESETS["refinedweb"].name == "5ng_450b_20r_9000h"
    with pytest.raises(ValueError, match="bands x rows must equal num_hashes: 20 x 20 = 400"):
        resolve_params("refinedweb", bands=20)
    with pytest.raises(ValueError, match="custom needs"):
        resolve_params("custom", bands=4)
    with pytest.raises(ValueError, match="unknown MinHash preset"):
        resolve_params("gopher")
    assert resolve_params("fineweb", ngram=3).ngram == 3


def test_s_curve_points():
    assert threshold_50(450, 20) == pytest.approx(0.7234, abs=1e-4)
    assert threshold_50(14, 8) == pytest.approx(0.6847, abs=1e-4)
    for b, r in ((450, 20), (14, 8)):
        assert catch_probability(threshold_50(b, r), b, r) == pytest.approx(0.5)
    assert catch_probability(0.8, 450, 20) == pytest.approx(0.9946, abs=1e-4)
    assert catch_probability(0.5, 450, 20) < 0.001


def test_scurve_command_prints_curve_and_50_percent_point():
    out = subprocess.run([sys.executable, "-m", "udfs.minhash", "scurve", "--preset", "refinedweb"],
                         capture_output=True, text=True, check=True).stdout
    assert "5ng_450b_20r_9000h" in out and "50% point: J = 0.7234" in out
    assert "0.80     0.9946" in out
    out = subprocess.run([sys.executable, "-m", "udfs.minhash", "scurve", "--preset", "custom", "--bands", "20",
                          "--rows", "5"], capture_output=True, text=True, check=True).stdout
    assert f"50% point: J = {threshold_50(20, 5):.4f}" in out


def test_expected_false_merges_counts_pairs_of_different_documents_in_one_key_space():
    # the band index is mixed into the key: n (n-1) / 2 * bands**2 document pairs of keys, each equal w.p. 2**-bits
    assert expected_false_merges(1e9, 450, 64) == pytest.approx(1e9 * (1e9 - 1) / 2 * 450 ** 2 / 2 ** 64)
    assert expected_false_merges(1e9, 450, 64) == pytest.approx(5489, rel=1e-3)    # refinedweb
    assert expected_false_merges(1e10, 450, 64) == pytest.approx(548_877, rel=1e-4)
    assert expected_false_merges(1e9, 14, 64) == pytest.approx(5.313, rel=1e-3)    # fineweb
    assert expected_false_merges(1e10, 14, 64) == pytest.approx(531.3, rel=1e-3)
    assert expected_false_merges(1e10, 450, 128) == pytest.approx(2.975e-14, rel=1e-3)
    assert expected_false_merges(1, 450, 64) == 0.0                                # one document merges nothing


@pytest.mark.parametrize("key_bits", [64, 128])
def test_truncated_band_key_collisions_match_the_prediction(key_bits):
    """Unrelated documents (random signatures), keys cut to 18 bits (128: 9 of each half, so the halves must be
    independent): pairs of different documents sharing a cut key match expected_false_merges within 4 sigma."""
    n, p = 1500, MinHashParams(num_hashes=16, bands=8, rows=2, key_bits=key_bits)
    sigs = np.random.default_rng(5).integers(0, 2 ** 32, size=(n, p.num_hashes), dtype=np.uint64).astype(np.uint32)
    u = MinHasher(p).band_keys(sigs).view(np.uint64)
    if key_bits == 64:
        cut = u & np.uint64(0x3FFFF)
    else:
        cut = ((u[..., 0] & np.uint64(0x1FF)) << np.uint64(9)) | (u[..., 1] & np.uint64(0x1FF))
    observed = colliding_pairs(cut.ravel()) - sum(colliding_pairs(row) for row in cut)   # minus same-document pairs
    expected = expected_false_merges(n, p.bands, 18)                                     # ~275
    assert abs(observed - expected) < 4 * expected ** 0.5


def test_128_bit_band_keys_extend_the_64_bit_ones():
    texts = ["the quick brown fox jumps over the lazy dog " * 5, "", "another page with other words in it today"]
    idx64, k64 = MinHasher(MinHashParams(16, 4, 4)).doc_band_keys(texts)
    idx128, k128 = MinHasher(MinHashParams(16, 4, 4, key_bits=128)).doc_band_keys(texts)
    assert idx64.tolist() == idx128.tolist() == [0] * 4 + [2] * 4
    assert k128.shape == (8, 2) and k128.dtype == np.int64
    assert k128[:, 0].tolist() == k64.tolist()               # the first half is the 64-bit key
    assert not set(k128[:, 1].tolist()) & set(k64.tolist())
    assert MinHasher(MinHashParams(16, 4, 4, key_bits=128)).doc_band_keys([""])[1].shape == (0, 2)
    assert MinHashParams(16, 4, 4, key_bits=128).name == "5ng_4b_4r_16h_128bit"
    assert MinHashParams(16, 4, 4).name == "5ng_4b_4r_16h"
    with pytest.raises(ValueError, match="64 or 128"):
        MinHashParams(16, 4, 4, key_bits=96)
