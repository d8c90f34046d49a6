"""BPE tokenizers of exact-substring dedup (bpe_cl100k / bpe_o200k): char offsets, pieces, window hashes, the stage."""
from __future__ import annotations

import random

import numpy as np
import pytest

bpe_openai = pytest.importorskip("bpe_openai", reason="the BPE tokenizers need bpe-openai: pip install 'mdr[bpe]'")

from tests.test_dedup_exact_stage import make_corpus, run_and_compare  # noqa: E402
from udfs.exact_substring import (BPE_ENCODINGS, BPE_PIECE_CHARS, _bpe, bpe_pieces, check_tokenizer,  # noqa: E402
                                  tokenize, tokens_regex, window_hashes)

BPE = sorted(BPE_ENCODINGS)
ALPHABET = list("ab ,.!\n\t_1é") + ["日", "本", "語", "で", "한", "ก", "\u3000", "\u0085", "\u00a0", "\ud800",
                                      "\U0001F600", "\u0301", "\U00020001", "ｱ", "丒", "𠀀", "ሴ", " the", " world"]


def toks(text, tokenizer):
    s, e = tokenize(text, tokenizer)
    return [text[a:b] for a, b in zip(s.tolist(), e.tolist())]


def whole_text_bounds(text: str, tokenizer: str) -> list[int]:
    """Token start chars of one encode of the whole text, split characters merged (the slow, obvious way)."""
    enc = _bpe(tokenizer)[0]
    starts, chars = [], 0
    # _encode_plain: encode_ordinary without the 200,000-token check (the whole text here is more)
    for b in enc.decode_tokens_bytes(enc._encode_plain(text)):
        if (b[0] & 0xC0) != 0x80:
            starts.append(chars)
        chars += sum((c & 0xC0) != 0x80 for c in b)
    return starts


@pytest.mark.parametrize("tokenizer", BPE)
def test_tokens_keep_their_spaces_and_cover_the_text(tokenizer):
    assert toks("Hello, world!", tokenizer) == ["Hello", ",", " world", "!"]
    rng = random.Random(11)
    for _ in range(2000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60)))
        s, e = tokenize(text, tokenizer)
        assert "".join(toks(text, tokenizer)) == text
        assert np.all(np.diff(s) > 0) and np.all(e > s) and s.tolist()[1:] == e.tolist()[:-1]
        assert list(zip(s.tolist(), e.tolist())) == tokens_regex(text, tokenizer)
        if "\ud800" not in text:
            assert s.tolist() == whole_text_bounds(text, tokenizer), repr(text)


def test_a_character_split_over_two_tokens_is_merged():
    enc = _bpe("bpe_cl100k")[0]
    raw = enc.decode_tokens_bytes(enc.encode_ordinary("丒丒 x"))
    assert raw[:2] == [b"\xe4\xb8", b"\x92"]                       # BPE splits the character's bytes ...
    assert toks("丒丒 x", "bpe_cl100k") == ["丒", "丒", " x"]       # ... the tokenizer does not
    # emoji: several byte pieces, one token, or joined to the space before them
    for tokenizer in BPE:
        assert toks("hi 😀🚀👍🏽!", tokenizer)[0] == "hi" and "".join(toks("hi 😀🚀👍🏽!", tokenizer)) == "hi 😀🚀👍🏽!"
        assert all(len(t) <= 3 for t in toks("😀🚀👍🏽", tokenizer))


@pytest.mark.parametrize("tokenizer", BPE)
def test_cjk_is_about_one_character_a_token_or_less(tokenizer):
    text = "今日は東京で会議があります。明日は大阪に行きます。天気は晴れ。中文字的测试句子，看看分词。"
    t = toks(text, tokenizer)
    assert "".join(t) == text and len(text) / 3 < len(t) <= len(text)


@pytest.mark.parametrize("tokenizer", BPE)
def test_long_text_in_pieces_tokenizes_like_the_whole(tokenizer):
    rng = random.Random(5)
    words = ["alpha", "beta", "日本語", "😀", "x1", "(paren)", "don't", "\n\n", "\t", "  ", "naïve", "丒"]
    text = "".join(rng.choice(words) + rng.choice([" ", " ", "  ", "\n", ""]) for _ in range(300_000))[:900_000]
    assert len(text) == 900_000
    cuts = bpe_pieces(text)
    assert len(cuts) >= 900_000 // BPE_PIECE_CHARS and all(0 < b - a <= BPE_PIECE_CHARS for a, b in zip(cuts, cuts[1:]))
    assert all(text[c] == " " and not text[c - 1].isspace() and not text[c + 1].isspace() for c in cuts[1:])
    s, e = tokenize(text, tokenizer)
    assert e[-1] == len(text) and np.all(np.diff(s) > 0)
    whole = whole_text_bounds(text, tokenizer)                 # one call: under the package's 1M-char limit
    assert s.tolist() == whole                                 # cut between pre-tokens: exactly the same tokens


def test_pieces_without_spaces_still_cut():
    text = "a\nb" * 40_000 + "x" * 200_000                      # newlines only, then no whitespace at all
    cuts = bpe_pieces(text)
    assert all(0 < b - a <= BPE_PIECE_CHARS for a, b in zip(cuts + [len(text)], cuts[1:] + [len(text)]) if b > a)
    assert all(text[c].isspace() for c in cuts[1:3])
    s, e = tokenize(text, "bpe_cl100k")
    assert "".join(text[a:b] for a, b in zip(s.tolist(), e.tolist())) == text


@pytest.mark.parametrize("tokenizer", BPE)
def test_window_hashes_tokenize_each_document_alone(tokenizer):
    rng = random.Random(3)
    vocab = ["a", "b", "cc", "日本", ",", "e_f", "😀", "丒", " "]
    texts = ["".join(rng.choice(vocab) for _ in range(rng.randint(0, 40))) for _ in range(50)] + [None, "", "\n"]
    k = 3
    doc, pos, h, n_tokens = window_hashes(texts, k, tokenizer)
    assert n_tokens.tolist() == [len(toks(t or "", tokenizer)) for t in texts]
    alone = [window_hashes([t], k, tokenizer) for t in texts]
    assert h.tolist() == [x for a in alone for x in a[2].tolist()]
    assert pos.tolist() == [x for a in alone for x in a[1].tolist()]
    assert doc.tolist() == [i for i, a in enumerate(alone) for _ in a[2].tolist()]
    by_hash: dict[int, set] = {}
    for d, p, x in zip(doc.tolist(), pos.tolist(), h.tolist()):
        by_hash.setdefault(x, set()).add(tuple(toks(texts[d], tokenizer)[p:p + k]))
    assert all(len(ws) == 1 for ws in by_hash.values())


def test_missing_package_names_the_fix(monkeypatch):
    import sys

    from pipeline.run.preflight import check_dedup_exact
    from udfs import exact_substring
    monkeypatch.setitem(sys.modules, "bpe_openai", None)       # import fails as if not installed
    exact_substring._bpe.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'mdr\[bpe\]'"):
            check_tokenizer("bpe_o200k")

        class Cfg:
            class dedup_exact:
                tokenizer = "bpe_o200k"
        with pytest.raises(ValueError, match=r"dedup_exact.tokenizer: .*pip install 'mdr\[bpe\]'"):
            check_dedup_exact(None, Cfg)
    finally:
        exact_substring._bpe.cache_clear()
    check_tokenizer("word")                                    # the other tokenizers need nothing


def test_stage_with_bpe_equals_brute_force(spark, cfg_factory, tmp_path):
    cfg = cfg_factory("run.audit=full", "dedup_exact.k=4", "dedup_exact.tokenizer=bpe_cl100k",
                      "dedup_exact.min_tokens_after_cut=3")
    docs = [d for s in range(500, 508) for d in make_corpus(s, 4)]
    got, manifest = run_and_compare(spark, cfg, docs, tmp_path)
    assert manifest["params"]["tokenizer"] == "bpe_cl100k"
    assert manifest["counts"]["removed"].get("exact_substring_removed", 0) > 0
    assert sum(1 for r in got.values() if r.reason is None and r.removed_chars > 0) > 3
    step3 = [d for d in docs if got[d["id"]].reason not in ("duplicate_url", "duplicate_text")]
    assert manifest["stats"]["tokens"] == sum(len(tokens_regex(d["text"] or "", "bpe_cl100k")) for d in step3)
