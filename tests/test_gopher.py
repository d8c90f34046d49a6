"""Gopher repetition and quality rules: a string just inside and just outside each threshold, exact reasons."""
from __future__ import annotations

import dataclasses

import pytest

from pipeline.core.config import QualityConfig, RepetitionConfig
from udfs.gopher import gopher_quality, gopher_repetition
from udfs.words import split_words

# --------------------------------------------------------------------------- word splitting


@pytest.mark.parametrize("text, words", [
    ("I don't know.", ["I", "do", "n't", "know", "."]),
    ("Mr.Wilson's car", ["Mr.", "Wilson", "'s", "car"]),
    ("(2023): PhD", ["(", "2023", "):", "PhD"]),
    ("a well-known fact", ["a", "well", "-", "known", "fact"]),
    ("the U.S. and e.g. this", ["the", "U.S.", "and", "e.g.", "this"]),
    ("costs $100 or $5.99!", ["costs", "$", "100", "or", "$", "5.99", "!"]),
    ("see http://example.com/a-b-c, now", ["see", "http://example.com/a-b-c", ",", "now"]),
    ("ran 10km today", ["ran", "10", "km", "today"]),
    ("wait... what?!", ["wait", "...", "what", "?", "!"]),
    ('he said "hello"', ["he", "said", '"', "hello", '"']),
    ("3+4 x/y rock&roll", ["3", "+", "4", "x", "/", "y", "rock&roll"]),
    ("can't won't", ["ca", "n't", "wo", "n't"]),
    ("C++ and/or #hashtag", ["C++", "and/or", "#", "hashtag"]),
    ("emoji 😀 here\n\tnext", ["emoji", "😀", "here", "next"]),
])
def test_split_words_follows_the_english_tokenizer_rules(text, words):
    # these are the tokens datatrove's spacy.blank("en") tokenizer gives (checked against spaCy 3.8)
    assert split_words(text) == words


# --------------------------------------------------------------------------- quality

Q = QualityConfig()


def words_text(n: int, filler: str = "lorem") -> str:
    """n words with the two stop words 'the' and 'and', the rest ``filler``."""
    return " ".join(["the", "and"] + [filler] * (n - 2))


def test_word_count_bounds():
    assert gopher_quality(words_text(50), Q).keep
    v = gopher_quality(words_text(49), Q)
    assert (v.reason, v.scores["n_words"]) == ("gopher_short_doc", 49)
    assert gopher_quality(words_text(100_000), Q).keep
    v = gopher_quality(words_text(100_001), Q)
    assert (v.reason, v.scores["n_words"]) == ("gopher_long_doc", 100_001)


def test_punctuation_tokens_are_not_words():
    # 49 words and a full stop: 50 tokens, 49 words
    v = gopher_quality(words_text(49) + " .", Q)
    assert v.reason == "gopher_short_doc" and v.scores["n_words"] == 49


def test_mean_word_length_bounds():
    assert gopher_quality(" ".join(["the", "and"] + ["abc"] * 48), Q).scores["mean_word_len"] == 3.0
    assert gopher_quality(" ".join(["the", "and"] + ["abc"] * 48), Q).keep
    v = gopher_quality(" ".join(["the", "and", "ab"] + ["abc"] * 47), Q)
    assert v.reason == "gopher_mean_word_len_low" and v.scores["mean_word_len"] == pytest.approx(2.98)
    long_words = ["the", "and", "a" * 17, "b" * 17] + ["c" * 10] * 46           # mean exactly 10
    assert gopher_quality(" ".join(long_words), Q).keep
    v = gopher_quality(" ".join(long_words[:-1] + ["d" * 11]), Q)
    assert v.reason == "gopher_mean_word_len_high" and v.scores["mean_word_len"] == pytest.approx(10.02)


def test_hash_and_ellipsis_ratios():
    body = words_text(90)
    assert gopher_quality(body + " #" * 10, Q).keep                          # 10 / 100 tokens
    v = gopher_quality(body + " #" * 11, Q)                                   # 11 / 101
    assert v.reason == "gopher_too_many_hashes" and v.scores["hash_ratio"] == pytest.approx(11 / 101)
    assert gopher_quality(" ... ".join(body.split(" ", 10)), Q).keep          # 10 '...' in 100 tokens
    v = gopher_quality(" ... ".join(body.split(" ", 11)), Q)                  # 11 in 101
    assert v.reason == "gopher_too_many_ellipsis" and v.scores["ellipsis_ratio"] == pytest.approx(11 / 101)
    assert gopher_quality(body + " …" * 11, Q).reason == "gopher_too_many_ellipsis"


def test_bullet_and_end_ellipsis_lines():
    line = "the kitten and the puppy slept"
    nine = "\n".join(["- " + line] * 9 + [line])
    assert gopher_quality(nine, Q).scores["bullet_lines_share"] == 0.9 and gopher_quality(nine, Q).keep
    v = gopher_quality("\n".join(["• " + line] * 10), Q)
    assert v.reason == "gopher_too_many_bullets" and v.scores["bullet_lines_share"] == 1.0
    three = "\n".join([line + " ..."] * 3 + [line] * 7)
    assert gopher_quality(three, Q).keep
    v = gopher_quality("\n".join([line + "…"] * 4 + [line] * 6), Q)
    assert v.reason == "gopher_too_many_end_ellipsis" and v.scores["ellipsis_lines_share"] == 0.4


def test_alphabetic_word_share():
    assert gopher_quality(words_text(80) + " 123" * 20, Q).keep              # 80 / 100
    v = gopher_quality(words_text(79) + " 123" * 21, Q)                       # 79 / 100
    assert v.reason == "gopher_below_alpha_threshold" and v.scores["alpha_words_share"] == 0.79
    # punctuation tokens count in the denominator: 80 words and 21 commas
    v = gopher_quality(words_text(80).replace(" lorem", ", lorem", 21), Q)
    assert v.reason == "gopher_below_alpha_threshold"


def test_stop_words():
    assert gopher_quality(" ".join(["the", "with"] + ["lorem"] * 60), Q).scores["stop_words"] == 2
    assert gopher_quality(" ".join(["the", "with"] + ["lorem"] * 60), Q).keep
    v = gopher_quality(" ".join(["the", "the"] + ["lorem"] * 60), Q)
    assert (v.reason, v.scores["stop_words"]) == ("gopher_few_stop_words", 1)
    # matched case-sensitively, as datatrove does
    assert gopher_quality(" ".join(["The", "And"] + ["lorem"] * 60), Q).reason == "gopher_few_stop_words"


def test_null_threshold_turns_a_rule_off():
    off = dataclasses.replace(Q, min_words=None)
    assert gopher_quality(words_text(10), off).keep


# --------------------------------------------------------------------------- repetition

OFF = RepetitionConfig(max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None,
                       max_dup_line_char_frac=None, max_top_ngram_char_frac={}, max_dup_ngram_char_frac={})


def only(**kw) -> RepetitionConfig:
    """Every repetition rule off but the named ones (at the values given)."""
    return dataclasses.replace(OFF, **kw)


def uniq(n: int, stem: str = "w") -> list[str]:
    return [f"{stem}{i:03d}" for i in range(n)]


def test_duplicate_paragraph_share():
    cfg = only(max_dup_para_frac=0.3)
    paras = uniq(7, "p")
    v = gopher_repetition("\n\n".join(paras + ["p000"] * 3), cfg)             # 3 of 10 repeat
    assert v.keep and v.scores["dup_para_frac"] == 0.3
    v = gopher_repetition("\n\n".join(paras[:6] + ["p000"] * 4), cfg)         # 4 of 10
    assert v.reason == "gopher_dup_para_frac" and v.scores["dup_para_frac"] == 0.4


def test_duplicate_paragraph_characters():
    cfg = only(max_dup_para_char_frac=0.2)
    a = "a" * 100
    v = gopher_repetition(f"{a}\n\n{'b' * 296}\n\n{a}", cfg)                   # 100 / 500
    assert v.keep and v.scores["dup_para_char_frac"] == 0.2
    v = gopher_repetition(f"{a}\n\n{'b' * 295}\n\n{a}", cfg)                   # 100 / 499
    assert v.reason == "gopher_dup_para_char_frac"


def test_duplicate_line_share_and_characters():
    cfg = only(max_dup_line_frac=0.3)
    lines = uniq(7, "l")
    assert gopher_repetition("\n".join(lines + ["l000"] * 3), cfg).keep
    assert gopher_repetition("\n".join(lines[:6] + ["l000"] * 4), cfg).reason == "gopher_dup_line_frac"
    cfg = only(max_dup_line_char_frac=0.2)
    a = "a" * 100
    v = gopher_repetition(f"{a}\n{'b' * 298}\n{a}", cfg)                       # 100 / 500
    assert v.keep and v.scores["dup_line_char_frac"] == 0.2
    assert gopher_repetition(f"{a}\n{'b' * 297}\n{a}", cfg).reason == "gopher_dup_line_char_frac"


def test_top_2_gram_share():
    cfg = only(max_top_ngram_char_frac={"2": 0.2})
    # 'xx yy' ten times (5 characters each) in 59 + 5m characters of text
    inside = " ".join(["xx", "yy"] * 10 + uniq(39, "q"))                      # 50 / 254
    v = gopher_repetition(inside, cfg)
    assert v.keep and v.scores["top_2_gram_char_frac"] == pytest.approx(50 / 254)
    v = gopher_repetition(" ".join(["xx", "yy"] * 10 + uniq(38, "q")), cfg)   # 50 / 249
    assert v.reason == "gopher_top_2_gram" and v.scores["top_2_gram_char_frac"] == pytest.approx(50 / 249)


@pytest.mark.parametrize("n, limit", [(3, 0.18), (4, 0.16)])
def test_top_3_and_4_gram_share(n, limit):
    cfg = only(max_top_ngram_char_frac={str(n): limit})
    gram = uniq(n, "g")                                     # n words of 4 characters
    gram_chars = 10 * (5 * n - 1)

    def text(m: int) -> str:
        return " ".join(gram * 10 + uniq(m, "q"))

    # the fewest filler words that keep the share within the limit: one less crosses it
    m = next(m for m in range(1000) if gram_chars / len(text(m)) <= limit)
    assert gopher_repetition(text(m), cfg).keep
    v = gopher_repetition(text(m - 1), cfg)
    assert v.reason == f"gopher_top_{n}_gram"
    assert v.scores[f"top_{n}_gram_char_frac"] == pytest.approx(gram_chars / len(text(m - 1)))


def test_duplicated_5_gram_share():
    cfg = only(max_dup_ngram_char_frac={"5": 0.15})
    a = uniq(5, "a")                                        # 20 characters, repeated once
    v = gopher_repetition(" ".join(a + uniq(17, "q") + a), cfg)               # 20 / 134
    assert v.keep and v.scores["dup_5_gram_char_frac"] == pytest.approx(20 / 134)
    v = gopher_repetition(" ".join(a + uniq(16, "q") + a), cfg)               # 20 / 129
    assert v.reason == "gopher_dup_5_gram" and v.scores["dup_5_gram_char_frac"] == pytest.approx(20 / 129)


@pytest.mark.parametrize("n", range(5, 11))
def test_duplicated_n_gram_share_at_gophers_thresholds(n):
    # each of the 5- to 10-gram rules at its default (Gopher) threshold, alone: one n-gram of n 4-letter
    # words repeated once (4n characters counted), and the fewest filler words that keep the share within it
    limit = RepetitionConfig().max_dup_ngram_char_frac[str(n)]
    cfg = only(max_dup_ngram_char_frac={str(n): limit})
    a = uniq(n, "a")

    def text(m: int) -> str:
        return " ".join(a + uniq(m, "q") + a)

    m = next(m for m in range(1000) if 4 * n / len(text(m)) <= limit)
    v = gopher_repetition(text(m), cfg)
    assert v.keep and v.scores[f"dup_{n}_gram_char_frac"] == pytest.approx(4 * n / len(text(m)))
    v = gopher_repetition(text(m - 1), cfg)
    assert v.reason == f"gopher_dup_{n}_gram"
    assert v.scores[f"dup_{n}_gram_char_frac"] == pytest.approx(4 * n / len(text(m - 1)))
    assert 4 * n / len(text(m - 1)) > limit


def test_duplicated_10_gram_share_counts_non_overlapping_repeats():
    cfg = only(max_dup_ngram_char_frac={"10": 0.10})
    a = uniq(10, "a")                                       # 40 characters
    # three copies: the walk counts the 2nd and the 3rd (80 characters)
    text = " ".join(a + a + a + uniq(100, "q"))
    v = gopher_repetition(text, cfg)
    assert v.scores["dup_10_gram_char_frac"] == pytest.approx(80 / len(text))
    assert v.reason == "gopher_dup_10_gram"
    assert gopher_repetition(" ".join(a + uniq(150, "q") + a), cfg).keep


def test_rules_run_in_gopher_order_with_default_thresholds():
    cfg = RepetitionConfig()
    boiler = "\n".join(["Home", "About us", "Contact"] * 4 + ["A line that is only here once."])
    assert gopher_repetition(boiler, cfg).reason == "gopher_dup_line_frac"
    assert gopher_repetition("", cfg).reason == "gopher_empty"
    prose = ("The committee met on Tuesday to discuss the budget for the coming year, and several members "
             "raised concerns about the cost of the new library. After a long debate, they agreed to postpone "
             "the vote until more information about the contractor's estimate had been gathered and shared.")
    v = gopher_repetition(prose, cfg)
    assert v.keep and v.scores["dup_5_gram_char_frac"] == 0.0


def test_words_can_be_shared_between_the_filters():
    text = " ".join(["the", "and"] + uniq(80))
    words = split_words(text)
    assert gopher_repetition(text, RepetitionConfig(), words) == gopher_repetition(text, RepetitionConfig())
    assert gopher_quality(text, Q, words) == gopher_quality(text, Q)
