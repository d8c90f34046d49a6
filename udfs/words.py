"""Word splitting as the Gopher references do it (datatrove's English tokenizer: spaCy's rules), without spaCy.

datatrove's Gopher filters split text with ``spacy.blank("en")``, and every threshold (alpha-word
share, mean word length, n-gram shares) is measured on those tokens, so we follow the same rules:
split on whitespace, peel prefixes and suffixes (punctuation, quotes, currency, units, ``'s``,
sentence dots), split infixes (hyphens and ``/`` between letters, ellipses, symbols), keep URLs
whole and apply spaCy's English exceptions (``don't`` -> ``do`` ``n't``, ``e.g.``, ``Mr.``). The
rules are regexes; each distinct whitespace-separated chunk is split once per process and cached.
"""
from __future__ import annotations

import json
from pathlib import Path

import regex

# --------------------------------------------------------------------------- character classes
# spaCy's classes, with Unicode properties instead of its hand-listed ranges: "lower" and "upper"
# include the uncased scripts (CJK, Arabic, Indic ...), as spaCy's ALPHA_LOWER / ALPHA_UPPER do.
_AL = r"\p{Ll}\p{Lo}\p{Lm}\p{Mn}\p{Mc}"
_AU = r"\p{Lu}\p{Lt}\p{Lo}\p{Lm}\p{Mn}\p{Mc}"
_A = r"\p{L}\p{Mn}\p{Mc}"
_PUNCT = ["…", ",", ":", ";", r"\!", r"\?", "¿", "؟", "¡", r"\(", r"\)", r"\[", r"\]", r"\{", r"\}", "<", ">",
          "_", "#", r"\*", "&", "。", "？", "！", "，", "、", "；", "：", "～", "·", "।", "،", "۔", "؛", "٪"]
_QUOTES = [r"\'", '"', "”", "“", "`", "‘", "´", "’", "‚", ",", "„", "»", "«", "「", "」", "『", "』", "（", "）",
           "〔", "〕", "【", "】", "《", "》", "〈", "〉", "〈", "〉", "⟦", "⟧"]
_CONCAT_QUOTES = "".join(q.replace("\\", "") for q in _QUOTES).replace("'", r"\'")
_ELLIPSES = [r"\.\.+", "…"]
_ICONS = [r"\p{So}"]
_CURRENCY = [r"\$", "£", "€", "¥", "฿", r"US\$", r"C\$", r"A\$", "₽", "﷼", "₴", r"[\u20A0-\u20BF]"]
_UNITS = ("km|km²|km³|m|m²|m³|dm|dm²|dm³|cm|cm²|cm³|mm|mm²|mm³|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|m/s|km/h|"
          "kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K|%|км|км²|км³|м|м²|м³|дм|дм²|дм³|см|см²|см³|мм|"
          "мм²|мм³|нм|кг|г|мг|м/с|км/ч|кПа|Па|мбар|Кб|КБ|кб|Мб|МБ|мб|Гб|ГБ|гб|Тб|ТБ|тб")
_PUNCT_CLASS = "".join(p for p in _PUNCT if p != "…") + "…"
_HYPHENS = "-|–|—|--|---|——|~"

_PREFIXES = (["§", "%", "=", "—", "–", r"\+(?![0-9])"] + _PUNCT + _ELLIPSES + _QUOTES + _CURRENCY + _ICONS)
_SUFFIXES = (_PUNCT + _ELLIPSES + _QUOTES + _ICONS + ["'s", "'S", "’s", "’S", "—", "–"] + [
    r"(?<=[0-9])\+",
    r"(?<=°[FfCcKk])\.",
    r"(?<=[0-9])(?:{})".format("|".join(_CURRENCY)),
    rf"(?<=[0-9])(?:{_UNITS})",
    rf"(?<=[0-9{_AL}%²\-\+{_PUNCT_CLASS}{_CONCAT_QUOTES}])\.",
    rf"(?<=[{_AU}][{_AU}])\.",
])
_INFIXES = (_ELLIPSES + _ICONS + [
    r"(?<=[0-9])[+\-\*^](?=[0-9-])",
    rf"(?<=[{_AL}{_CONCAT_QUOTES}])\.(?=[{_AU}{_CONCAT_QUOTES}])",
    rf"(?<=[{_A}]),(?=[{_A}])",
    rf"(?<=[{_A}0-9])(?:{_HYPHENS})(?=[{_A}])",
    rf"(?<=[{_A}0-9])[:<>=/](?=[{_A}])",
])

_PREFIX_RE = regex.compile("|".join("^" + p for p in _PREFIXES))
_SUFFIX_RE = regex.compile("|".join(p + "$" for p in _SUFFIXES))
_INFIX_RE = regex.compile("|".join(_INFIXES))
# spaCy's URL matcher (after dperini's regex): a URL stays one token
_URL_RE = regex.compile(
    r"^(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?"
    r"(?:(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    rf"(?:[{_AL}]{{2,63}}))"
    r"(?::\d{2,5})?(?:[/?#]\S*)?$")

_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    k: tuple(v) for k, v in json.loads(
        (Path(__file__).with_name("en_tokenizer_exceptions.json")).read_text(encoding="utf-8"))["exceptions"].items()}

_S_SUFFIXES = ("'s", "'S", "’s", "’S")
_SUFFIX_SCAN = 12  # longer than any suffix but an ellipsis run (handled apart)
_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 200_000


def _find_suffix(s: str):
    """The leftmost suffix match, as spaCy's ``suffix_search``; only the tail is scanned (suffixes are short)."""
    if not s or s[-1].isalpha() and not s.endswith(_S_SUFFIXES) and not any(c.isdigit() for c in s):
        return None  # a letter ends only 's or a unit after a digit
    if len(s) <= _SUFFIX_SCAN or s.endswith(".."):
        return _SUFFIX_RE.search(s)
    return _SUFFIX_RE.search(s, len(s) - _SUFFIX_SCAN)


def _split_affixes(s: str, specials: dict) -> list[str]:
    """spaCy's affix loop on one whitespace-free chunk (Tokenizer._split_affixes + _attach_tokens)."""
    if s in specials:
        return specials[s]
    prefixes: list[str] = []
    suffixes: list[str] = []
    last = -1
    while s and len(s) != last:
        if s in specials:
            break
        last = len(s)
        m = None if s[0].isalnum() and s[0] not in "UCA" else _PREFIX_RE.match(s)
        pre = m.end() if m else 0
        if pre:
            minus_pre = s[pre:]
            if minus_pre and minus_pre in specials:
                prefixes.append(s[:pre])
                s = minus_pre
                break
        m = _find_suffix(s[pre:])
        suf = (m.end() - m.start()) if m else 0
        if suf:
            minus_suf = s[:-suf]
            if minus_suf and minus_suf in specials:
                suffixes.append(s[-suf:])
                s = minus_suf
                break
        if pre and suf and pre + suf <= len(s):
            prefixes.append(s[:pre])
            suffixes.append(s[-suf:])
            s = s[pre:-suf]
        elif pre:
            prefixes.append(s[:pre])
            s = s[pre:]
        elif suf:
            suffixes.append(s[-suf:])
            s = s[:-suf]
        if s and s in specials:
            break
    out = prefixes
    if s:
        if s in specials:
            out.extend(specials[s])
        elif "." in s and _URL_RE.match(s):
            out.append(s)
        elif s.isalnum():  # every infix rule needs a non-alphanumeric character
            out.append(s)
        else:
            start = 0
            for m in _INFIX_RE.finditer(s):
                a, b = m.start(), m.end()
                if a == 0:
                    continue
                if a != start:
                    out.append(s[start:a])
                if a != b:
                    out.append(s[a:b])
                start = b
            if start < len(s):
                out.append(s[start:])
    out.extend(reversed(suffixes))
    return out


def _special_patterns() -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Exceptions that contain affixes, as the token runs the affix rules make of them (spaCy's special matcher)."""
    by_first: dict[str, list] = {}
    for key, toks in _EXCEPTIONS.items():
        if _PREFIX_RE.search(key) or _INFIX_RE.search(key) or _SUFFIX_RE.search(key):
            pattern = tuple(_split_affixes(key, {}))
            by_first.setdefault(pattern[0], []).append((pattern, toks))
    for runs in by_first.values():
        runs.sort(key=lambda r: -len(r[0]))
    return by_first


_PATTERNS = _special_patterns()


def _split_chunk(s: str) -> tuple[str, ...]:
    """Affix rules, then exceptions matched across the resulting tokens (``Mr.Wilson`` -> ``Mr.`` ``Wilson``)."""
    if s in _EXCEPTIONS:
        return _EXCEPTIONS[s]
    if s.isalpha() or s.isdecimal():  # no affix or infix rule applies to a run of letters or of digits
        return (s,)
    toks = _split_affixes(s, _EXCEPTIONS)
    if len(toks) < 2:
        return tuple(toks)
    out: list[str] = []
    i, n = 0, len(toks)
    while i < n:
        for pattern, repl in _PATTERNS.get(toks[i], ()):
            k = len(pattern)
            if tuple(toks[i:i + k]) == pattern:
                out.extend(repl)
                i += k
                break
        else:
            out.append(toks[i])
            i += 1
    return tuple(out)


def split_words(text: str) -> list[str]:
    """The words (tokens, punctuation included) datatrove's English tokenizer would give for ``text``."""
    cache = _CACHE
    words: list[str] = []
    extend = words.extend
    for chunk in text.split():
        toks = cache.get(chunk)
        if toks is None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            toks = cache[chunk] = _split_chunk(chunk)
        extend(toks)
    return words
