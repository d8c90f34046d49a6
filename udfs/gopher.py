"""Gopher repetition removal and quality filters (Rae et al. 2021), measured as datatrove measures them.

Both take the text and their config section and return a ``Verdict`` whose scores are the measured
shares; the first rule that fails names the reason, in datatrove's order, so a re-tune can be read off
the rejects. Pass ``words=split_words(text)`` to share one word split between the two filters.
"""
from __future__ import annotations

import re
from collections import Counter
from operator import itemgetter
from typing import TYPE_CHECKING

from udfs.verdict import Verdict
from udfs.words import split_words

if TYPE_CHECKING:
    from pipeline.core.config import QualityConfig, RepetitionConfig

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
# datatrove's PUNCTUATION: a token made only of these is a symbol, not a word
PUNCTUATION = ("!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
               + "".join(map(chr, (x for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(a, b)))))
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(elements that repeat an earlier one, their characters), as datatrove's find_duplicates."""
    unique = set(items)
    n_dup = len(items) - len(unique)
    if not n_dup:
        return 0, 0
    return n_dup, sum(map(len, items)) - sum(map(len, unique))


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n))))


def _top_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the most frequent n-gram (joined by spaces) times its count; first seen wins ties."""
    gram, count = max(Counter(_ngrams(words, n)).items(), key=itemgetter(1))
    return (sum(map(len, gram)) + n - 1) * count


def _dup_ngram_chars(words: list[str], n: int) -> int:
    """Characters in n-grams that repeat an earlier, non-overlapping one (datatrove's find_all_duplicate walk)."""
    grams = _ngrams(words, n)
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0
    seen: set = set()
    chars, idx, end = 0, 0, len(grams)
    while idx < end:
        g = grams[idx]
        if counts[g] > 1:  # an n-gram seen once in the whole text can never be a repeat
            if g in seen:
                chars += sum(map(len, g))
                idx += n
                continue
            seen.add(g)
        idx += 1
    return chars


def gopher_repetition(text: str, cfg: "RepetitionConfig", words: list[str] | None = None) -> Verdict:
    """Drop documents made of repeated lines, paragraphs or n-grams (Gopher table A1 thresholds)."""
    if not text:
        return Verdict.drop("gopher_empty")
    n_chars = len(text)
    scores: dict[str, float] = {}
    paragraphs = _PARAGRAPHS.split(text.strip())
    n_dup, dup_chars = _duplicates(paragraphs)
    scores["dup_para_frac"] = n_dup / len(paragraphs)
    if cfg.max_dup_para_frac is not None and scores["dup_para_frac"] > cfg.max_dup_para_frac:
        return Verdict.drop("gopher_dup_para_frac", **scores)
    scores["dup_para_char_frac"] = dup_chars / n_chars
    if cfg.max_dup_para_char_frac is not None and scores["dup_para_char_frac"] > cfg.max_dup_para_char_frac:
        return Verdict.drop("gopher_dup_para_char_frac", **scores)
    lines = _LINES.split(text)
    n_dup, dup_chars = _duplicates(lines)
    scores["dup_line_frac"] = n_dup / len(lines)
    if cfg.max_dup_line_frac is not None and scores["dup_line_frac"] > cfg.max_dup_line_frac:
        return Verdict.drop("gopher_dup_line_frac", **scores)
    scores["dup_line_char_frac"] = dup_chars / n_chars
    if cfg.max_dup_line_char_frac is not None and scores["dup_line_char_frac"] > cfg.max_dup_line_char_frac:
        return Verdict.drop("gopher_dup_line_char_frac", **scores)

    if words is None:
        words = split_words(text)
    for key, limit in cfg.max_top_ngram_char_frac.items():
        n = int(key)
        if len(words) < n:
            continue
        frac = scores[f"top_{n}_gram_char_frac"] = _top_ngram_chars(words, n) / n_chars
        if frac > limit:
            return Verdict.drop(f"gopher_top_{n}_gram", **scores)
    no_repeats_below = None  # when no n-gram repeats, no longer one can
    for key, limit in cfg.max_dup_ngram_char_frac.items():
        n = int(key)
        if no_repeats_below is not None and n >= no_repeats_below:
            chars = 0
        else:
            chars = _dup_ngram_chars(words, n) if len(words) > n else 0
            if chars == 0:
                no_repeats_below = n if no_repeats_below is None else min(n, no_repeats_below)
        frac = scores[f"dup_{n}_gram_char_frac"] = chars / n_chars
        if frac > limit:
            return Verdict.drop(f"gopher_dup_{n}_gram", **scores)
    return Verdict.ok(**scores)


def gopher_quality(text: str, cfg: "QualityConfig", words: list[str] | None = None) -> Verdict:
    """Drop documents that do not read like prose: too short or long, odd word lengths, symbols, no stop words."""
    if words is None:
        words = split_words(text)
    n_tokens = len(words)
    non_symbol = [w for w in words if w.strip(PUNCTUATION)]
    n_words = len(non_symbol)
    scores: dict[str, float] = {"n_words": n_words}
    if n_tokens == 0 or (cfg.min_words is not None and n_words < cfg.min_words):
        return Verdict.drop("gopher_short_doc", **scores)
    if cfg.max_words is not None and n_words > cfg.max_words:
        return Verdict.drop("gopher_long_doc", **scores)
    mean = scores["mean_word_len"] = sum(map(len, non_symbol)) / n_words if n_words else 0.0
    if cfg.min_mean_word_len is not None and mean < cfg.min_mean_word_len:
        return Verdict.drop("gopher_mean_word_len_low", **scores)
    if cfg.max_mean_word_len is not None and mean > cfg.max_mean_word_len:
        return Verdict.drop("gopher_mean_word_len_high", **scores)
    if cfg.max_symbol_word_ratio is not None:
        ratio = scores["hash_ratio"] = text.count("#") / n_tokens
        if ratio > cfg.max_symbol_word_ratio:
            return Verdict.drop("gopher_too_many_hashes", **scores)
        ratio = scores["ellipsis_ratio"] = (text.count("...") + text.count("…")) / n_tokens
        if ratio > cfg.max_symbol_word_ratio:
            return Verdict.drop("gopher_too_many_ellipsis", **scores)
    lines = text.splitlines() or [""]
    share = scores["bullet_lines_share"] = sum(1 for s in lines if s.lstrip().startswith(_BULLETS)) / len(lines)
    if cfg.max_bullet_lines_share is not None and share > cfg.max_bullet_lines_share:
        return Verdict.drop("gopher_too_many_bullets", **scores)
    share = scores["ellipsis_lines_share"] = sum(1 for s in lines if s.rstrip().endswith(_ELLIPSES)) / len(lines)
    if cfg.max_ellipsis_lines_share is not None and share > cfg.max_ellipsis_lines_share:
        return Verdict.drop("gopher_too_many_end_ellipsis", **scores)
    alpha = sum(1 for w in words if w.isalpha() or any(map(str.isalpha, w)))
    share = scores["alpha_words_share"] = alpha / n_tokens
    if cfg.min_alpha_words_share is not None and share < cfg.min_alpha_words_share:
        return Verdict.drop("gopher_below_alpha_threshold", **scores)
    present = set(words)
    n_stop = scores["stop_words"] = sum(1 for w in set(cfg.stop_words) if w in present)
    if cfg.min_stop_words is not None and n_stop < cfg.min_stop_words:
        return Verdict.drop("gopher_few_stop_words", **scores)
    return Verdict.ok(**scores)
