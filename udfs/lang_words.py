"""Word splitting and stop words per language, for the Gopher and line rules beyond English.

``en`` keeps ``udfs.words.split_words`` (datatrove's spaCy rules, byte for byte). Scripts that put
spaces between words (Latin, Cyrillic, Greek, Hangul, Arabic ...) split into word runs, with every
other non-space character its own token, as spaCy leaves punctuation. Chinese is segmented by jieba
(``rjieba``, the Rust port, dictionary in the wheel), Japanese by MeCab (``fugashi`` with the
``unidic-lite`` dictionary, in its wheel), Thai by PyThaiNLP's ``newmm`` (dictionary in the wheel):
nothing is downloaded at run time. ``chars`` makes every non-space character (a grapheme cluster: a letter with
its combining marks, as Khmer or Burmese writes a syllable's vowel signs) a word, for a
language with no segmenter. Segmenters load lazily, once per process.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import regex

from udfs.words import split_words as split_english

# lang -> tokenizer; every other language: "words" (yue, Cantonese, and wuu, Wu, are written in Han script too)
DEFAULT_TOKENIZERS = {"en": "english", "zh": "jieba", "yue": "jieba", "wuu": "jieba", "ja": "mecab", "th": "thai"}
# languages lid.176 labels whose script has no spaces between words and no segmenter here (Khmer, Lao, Burmese):
# word runs are whole phrases, so they need a filter.languages entry (tokenizer chars, calibrated thresholds)
UNSEGMENTED = frozenset({"km", "lo", "my"})
TOKENIZERS = ("english", "words", "jieba", "mecab", "thai", "chars")

# a word: letters, marks and digits, joined by an apostrophe or hyphen inside it; anything else but space is a token
_WORD_RUN = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*|\S")


def split_word_runs(text: str) -> list[str]:
    return _WORD_RUN.findall(text)


_GRAPHEME = regex.compile(r"\X")


def split_chars(text: str) -> list[str]:
    """Every user-perceived character but spaces: a base letter with its marks is one (ក្ម, not ក ្ ម)."""
    return [g for g in _GRAPHEME.findall(text) if not g.isspace()]


@lru_cache(maxsize=1)
def _mecab():
    import fugashi
    return fugashi.Tagger()  # finds the unidic-lite dictionary installed beside it


def split_japanese(text: str) -> list[str]:
    tagger = _mecab()
    out: list[str] = []
    for line in text.split("\n"):  # MeCab works per sentence; a line keeps its cost bounded
        if line.strip():
            out.extend(w.surface for w in tagger(line) if w.surface.strip())
    return out


def split_chinese(text: str) -> list[str]:
    import rjieba
    return [w for w in rjieba.cut(text) if not w.isspace()]


def split_thai(text: str) -> list[str]:
    from pythainlp.tokenize import word_tokenize
    return [w for w in word_tokenize(text, engine="newmm", keep_whitespace=False) if w.strip()]


_SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "english": split_english, "words": split_word_runs, "jieba": split_chinese, "mecab": split_japanese,
    "thai": split_thai, "chars": split_chars}


def tokenizer_name(lang: str | None, override: str | None = None) -> str:
    """The tokenizer a language gets: the configured one, else the default for the language, else word runs."""
    if override:
        return override
    return DEFAULT_TOKENIZERS.get(lang or "en", "words")


def splitter(name: str) -> Callable[[str], list[str]]:
    return _SPLITTERS[name]


@lru_cache(maxsize=64)
def iso_stop_words(lang: str) -> frozenset[str]:
    """The stopwords-iso list of a language (empty when it has none), only the entries that hold a letter and that
    the language's tokenizer keeps as one word: its zh, ko, fa, es, ar and en lists also hold punctuation and digits
    (、 ， ３ ...), which any text has, and its vi and ko lists phrases with spaces ('bắt đầu từ'), which no word
    equals."""
    import stopwordsiso
    if not stopwordsiso.has_lang(lang):
        return frozenset()
    split = splitter(tokenizer_name(lang))
    return frozenset(w for w in stopwordsiso.stopwords(lang) if any(c.isalpha() for c in w) and split(w) == [w])
