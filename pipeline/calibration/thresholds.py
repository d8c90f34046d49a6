"""`mdr calibrate-filters`: a language's Gopher thresholds from clean reference text, as FineWeb-2 derives them.

Each rule's value is measured on windows of clean reference text in the language (``pipeline.calibration.reference``),
split into words by the language's tokenizer. ``quantile`` takes the value at the chosen quantile (``q`` for
a "most" rule, ``1 - q`` for a "fewest" rule) as the threshold. ``ratio`` (the default) measures the same
quantile (default: the median, FineWeb-2's median-ratio) on clean English reference text with the English
rules and scales the English threshold by the ratio of the two values (a "fewest share" rule: its complement), so a clean text is as far inside the threshold in either language; this holds the
English thresholds' strictness while following what the language's tokenizer makes of text (short Chinese
words, long German compounds). A rule whose value is 0 at that quantile in either language (clean text rarely
repeats 10-grams) cannot be scaled and keeps the English threshold. Stop words: the stopwords-iso words of the
language most frequent in the reference, as many as the English list has.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np

from pipeline.calibration.reference import reference_docs, windows
from pipeline.core.config import FilterConfig, QualityConfig, RepetitionConfig
from pipeline.core.storage import Storage

# (config section, key, score name, "max" rules take the high quantile, "min" the low one)
RULES = [
    ("repetition", "max_dup_para_frac", "dup_para_frac", "max"),
    ("repetition", "max_dup_para_char_frac", "dup_para_char_frac", "max"),
    ("repetition", "max_dup_line_frac", "dup_line_frac", "max"),
    ("repetition", "max_dup_line_char_frac", "dup_line_char_frac", "max"),
    *[("repetition", f"max_top_ngram_char_frac.{n}", f"top_{n}_gram_char_frac", "max") for n in (2, 3, 4)],
    *[("repetition", f"max_dup_ngram_char_frac.{n}", f"dup_{n}_gram_char_frac", "max") for n in range(5, 11)],
    ("quality", "min_mean_word_len", "mean_word_len", "min"),
    ("quality", "max_mean_word_len", "mean_word_len", "max"),
    ("quality", "min_alpha_words_share", "alpha_words_share", "min"),
]


def _measure_all(texts: list[str], tokenizer: str) -> list[dict]:
    """Every rule's score on every text (no threshold applies)."""
    from udfs.gopher import gopher_quality, gopher_repetition
    from udfs.lang_words import splitter
    inf = math.inf
    rep = RepetitionConfig(max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None,
                           max_dup_line_char_frac=None, max_top_ngram_char_frac={"2": inf, "3": inf, "4": inf},
                           max_dup_ngram_char_frac={str(n): inf for n in range(5, 11)})
    qual = QualityConfig(min_words=None, max_words=None, min_mean_word_len=None, max_mean_word_len=None,
                         max_symbol_word_ratio=None, max_bullet_lines_share=None, max_ellipsis_lines_share=None,
                         min_alpha_words_share=None, min_stop_words=None)
    split = splitter(tokenizer)
    out = []
    for t in texts:
        words = split(t)
        if not words:
            continue
        s = dict(gopher_repetition(t, rep, words).scores)
        s.update(gopher_quality(t, qual, words).scores)
        out.append(s)
    return out


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default); NaN for no values."""
    return float(np.quantile(values, q)) if values else math.nan


def _get(section, key: str) -> float | None:
    if "." in key:
        name, n = key.split(".")
        return getattr(section, name).get(n)
    return getattr(section, key)


def _value(scores: list[dict], score: str, side: str, q: float) -> float:
    return quantile([s[score] for s in scores if score in s], q if side == "max" else 1 - q)


def stop_words_from(texts: list[str], tokenizer: str, lang: str, n: int) -> list[str]:
    """The ``n`` stopwords-iso words of ``lang`` most frequent in the texts (as tokenized)."""
    from udfs.lang_words import iso_stop_words, splitter
    iso = iso_stop_words(lang)
    split = splitter(tokenizer)
    counts = Counter(w for t in texts for w in split(t) if w in iso)
    return [w for w, _ in counts.most_common(n)]


@dataclasses.dataclass
class Calibration:
    lang: str
    tokenizer: str
    method: str
    q: float
    windows: int
    english_windows: int
    repetition: dict
    quality: dict
    notes: dict  # key -> how its value was found

    def yaml(self) -> str:
        """The ``filter.languages.<lang>`` entry, each value with how it was found."""
        lines = [f"    {self.lang}:  # mdr calibrate-filters --method {self.method} --quantile {self.q}: "
                 f"{self.windows} reference windows" + (f", {self.english_windows} English" if self.english_windows
                                                        else ""),
                 f"      tokenizer: {self.tokenizer}"]
        for section in ("repetition", "quality"):
            lines.append(f"      {section}:")
            for key, v in getattr(self, section).items():
                if isinstance(v, dict):
                    lines.append(f"        {key}:")
                    for k, x in v.items():
                        lines.append(f"          \"{k}\": {x}  # {self.notes.get(f'{key}.{k}', '')}")
                elif isinstance(v, list):
                    lines.append(f"        {key}: [{', '.join(v)}]  # {self.notes.get(key, '')}")
                else:
                    lines.append(f"        {key}: {v}  # {self.notes.get(key, '')}")
        return "\n".join(lines) + "\n"


MIN_WINDOWS = 20  # fewest reference windows calibrate() derives thresholds from (--min-windows lowers it)


def calibrate(store: Storage, cfg: FilterConfig, lang: str, reference: list[str], method: str = "ratio",
              q: float | None = None, english_reference: list[str] | None = None, window_chars: int = 1500,
              min_windows: int = MIN_WINDOWS) -> Calibration:
    from udfs.lang_words import tokenizer_name
    q = q if q is not None else (0.5 if method == "ratio" else 0.9)
    over = cfg.languages.get(lang)
    tokenizer = tokenizer_name(lang, over.tokenizer if over else None)
    texts = windows(reference_docs(store, reference, lang), window_chars)
    if not texts:
        raise ValueError(f"no reference text in {lang!r} under {', '.join(reference)}")
    if len(texts) < min_windows:
        raise ValueError(f"only {len(texts)} reference windows of {lang!r} text under {', '.join(reference)} (at least "
                         f"{min_windows} needed): a quantile of so few values is one document's accident, not the "
                         f"language's; give more clean {lang} text with --reference (each ~{window_chars} characters "
                         f"is a window), or accept a thin reference with --min-windows {len(texts)} and check the "
                         f"thresholds by hand")
    scores = _measure_all(texts, tokenizer)
    en_scores: list[dict] = []
    if method == "ratio":
        en_texts = windows(reference_docs(store, english_reference or reference, "en"), window_chars)
        if not en_texts:
            raise ValueError("--method ratio needs clean English reference text (--english-reference)")
        en_scores = _measure_all(en_texts, "english")
    base = {"repetition": cfg.repetition, "quality": cfg.quality}
    out: dict = {"repetition": {}, "quality": {}}
    notes: dict = {}
    for section, key, score, side in RULES:
        en_thr = _get(base[section], key)
        if en_thr is None:
            continue
        v = _value(scores, score, side, q)
        if method == "quantile":
            thr, note = v, f"q{q if side == 'max' else round(1 - q, 3)} of {lang} reference"
        else:
            en_v = _value(en_scores, score, side, q)
            if side == "min" and score.endswith("share"):  # a share near 1 scales by what it leaves out
                en_thr, v, en_v = 1 - en_thr, 1 - v, 1 - en_v
            if not en_v or not v or math.isnan(v):
                thr, note = _get(base[section], key), f"English value kept ({lang} {v:.3f}, en {en_v:.3f})"
            else:
                thr = en_thr * v / en_v
                note = f"en {en_thr:.3g} x {lang} {v:.3f} / en {en_v:.3f}"
                if side == "min" and score.endswith("share"):
                    thr, note = 1 - thr, f"1 - ({note}), shares of non-alphabetic tokens"
        if score.endswith(("frac", "share")):
            thr = min(thr, 1.0)
        thr = round(thr, 3)
        if "." in key:
            name, n = key.split(".")
            out[section].setdefault(name, {})[n] = thr
        else:
            out[section][key] = thr
        notes[key] = note
    sw = stop_words_from(texts, tokenizer, lang, len(cfg.quality.stop_words))
    if sw:
        out["quality"]["stop_words"] = sw
        notes["stop_words"] = "stopwords-iso words most frequent in the reference"
    return Calibration(lang, tokenizer, method, q, len(texts), len(en_scores), out["repetition"], out["quality"],
                       notes)
