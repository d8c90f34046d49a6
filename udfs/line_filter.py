"""RefinedWeb line-wise corrections (Penedo et al. 2023, appendix G.2): boilerplate lines out, the rest kept.

A short line (at most ``max_pattern_line_words`` words) first loses the navigation fragments configured
for its start, end or anywhere (``Sign in``, ``Read more``, ``items in cart``); then a line is removed
when what is left is a single word, only numbers, a social-media counter (``12 likes``) or mostly
uppercase. When the corrections remove more than ``max_removed_words_share`` of the document's words,
the document is dropped: it was mostly boilerplate. Words here are whitespace-separated, as in the paper.
Each removed line is counted under the rule that removed it (``lines_removed_by`` in the scores).
C4's line rules (terminal punctuation, at least 3 words, javascript/policy lines, ``lorem ipsum``
and ``{`` documents) are options, off by default, for the c4 preset. A language written without spaces
passes ``count_words`` (its segmenter's word count) so that its lines and shares are counted in words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

from udfs.verdict import Verdict

if TYPE_CHECKING:
    from pipeline.core.config import LineFilterConfig

_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_TERMINAL = (".", "!", "?", '"', "'")  # C4's line endings
_SEPARATORS = " \t.,;:!?|/-–—»«·•()[]"  # what an edited line may be left with and still be empty


@dataclass(frozen=True)
class _Rules:
    counter: re.Pattern | None
    start: re.Pattern | None
    end: re.Pattern | None
    anywhere: re.Pattern | None
    line_substrings: tuple[str, ...]


def _alternation(patterns: tuple[str, ...]) -> str:
    """Longest first; a fragment that starts or ends with a word character must start or end a word there."""
    out = []
    for p in sorted(patterns, key=len, reverse=True):
        left = r"(?<!\w)" if re.match(r"\w", p) else ""
        right = r"(?!\w)" if re.search(r"\w$", p) else ""
        out.append(f"{left}{re.escape(p)}{right}")
    return "|".join(out)


@lru_cache(maxsize=8)
def _rules(counter_words: tuple[str, ...], start: tuple[str, ...], end: tuple[str, ...],
           anywhere: tuple[str, ...], line_substrings: tuple[str, ...]) -> _Rules:
    """Regexes compiled once per distinct config (cached per process)."""
    counter = None
    if counter_words:
        nouns = "(?:{})s?(?!\\w)".format("|".join(re.escape(w) for w in sorted(counter_words, key=len, reverse=True)))
        number = r"\d[\d,.]*\s*[kKmM]?\+?"
        one = rf"(?:{number}\s*{nouns}|{nouns}\s*[:(]?\s*{number}\)?)"
        counter = re.compile(rf"\W*{one}(?:[\W_]+{one})*\W*", re.IGNORECASE)
    # separators around a fragment go with it; a sentence's own full stop before an end fragment stays
    start_re = re.compile(rf"^\W*(?:{_alternation(start)})[\s:;,.|·•»>\-–—]*", re.IGNORECASE) if start else None
    end_re = re.compile(rf"[\s:;,|·•«<\-–—]*(?:{_alternation(end)})\W*$", re.IGNORECASE) if end else None
    any_re = re.compile(rf"(?:{_alternation(anywhere)})[.!;,]?", re.IGNORECASE) if anywhere else None
    return _Rules(counter, start_re, end_re, any_re, tuple(x.lower() for x in line_substrings))


def _mostly_upper(line: str, limit: float) -> bool:
    letters = [c for c in line if c.isalpha()]
    if not letters:
        return False
    return sum(1 for c in letters if c.isupper()) / len(letters) > limit


def _edit(line: str, rules: _Rules) -> str:
    """The line without the navigation fragments configured for its start, its end and anywhere."""
    if rules.start is not None:
        line = rules.start.sub("", line, count=1)
    if rules.end is not None:
        line = rules.end.sub("", line, count=1)
    if rules.anywhere is not None:
        line = rules.anywhere.sub("", line)
    return line


def _line_rule(line: str, n_words: int, cfg: "LineFilterConfig", rules: _Rules) -> str | None:
    """The rule that removes a line whole (too few words, only numbers, a counter, mostly uppercase, or C4's
    line rules), or None: the rule's name is counted in the verdict's ``lines_removed_by``."""
    if n_words < cfg.min_line_words:
        return "few_words"
    if cfg.require_terminal_punct and (not line.endswith(_TERMINAL) or line.endswith("...")):
        return "no_terminal_punct"
    if rules.line_substrings and any(s in line.lower() for s in rules.line_substrings):
        return "substring"
    if cfg.remove_numeric and not _LETTER.search(line) and _DIGIT.search(line):
        return "numeric"
    if (cfg.remove_counters and rules.counter is not None and n_words <= cfg.max_pattern_line_words
            and rules.counter.fullmatch(line)):
        return "counter"
    if cfg.max_uppercase_share is not None and _mostly_upper(line, cfg.max_uppercase_share):
        return "uppercase"
    return None


def _whitespace_words(s: str) -> int:
    return len(s.split())


def correct_lines(text: str, cfg: "LineFilterConfig",
                  count_words: Callable[[str], int] | None = None) -> tuple[str, Verdict]:
    """(corrected text, verdict): the text without its boilerplate lines, or a drop when too much went.
    Words are whitespace-separated unless ``count_words`` counts them (a segmenter, for CJK and Thai)."""
    count = count_words or _whitespace_words
    rules = _rules(tuple(cfg.counter_words), tuple(cfg.start_patterns), tuple(cfg.end_patterns),
                   tuple(cfg.anywhere_patterns), tuple(cfg.remove_line_substrings))
    if cfg.drop_doc_substrings:
        lowered = text.lower()
        for s in cfg.drop_doc_substrings:
            if s.lower() in lowered:
                return text, Verdict.drop("line_filter_doc_substring", substring=s)
    total = removed = 0
    n_removed_lines = n_edited_lines = 0
    removed_by: dict[str, int] = {}
    out: list[str] = []
    for line in text.split("\n"):
        n = count(line)
        total += n
        if n == 0:
            out.append(line)
            continue
        stripped = line.strip()
        edited = _edit(stripped, rules) if n <= cfg.max_pattern_line_words else stripped
        left = edited.split()
        n_left = len(left) if count_words is None else count(edited)
        if not left or (edited != stripped and not edited.strip(_SEPARATORS)):
            rule = "navigation"  # nothing but navigation fragments and separators
        else:
            rule = _line_rule(edited, n_left, cfg, rules)
        if rule is not None:
            removed += n
            n_removed_lines += 1
            removed_by[rule] = removed_by.get(rule, 0) + 1
            continue
        if edited != stripped:
            removed += n - n_left
            n_edited_lines += 1
            line = " ".join(left)
        out.append(line)
    share = removed / total if total else 0.0
    scores = {"line_removed_words_share": share, "lines_removed": n_removed_lines, "lines_edited": n_edited_lines,
              "lines_removed_by": removed_by}
    corrected = "\n".join(out).strip("\n")
    if share > cfg.max_removed_words_share:
        return corrected, Verdict.drop("line_filter_removed_too_much", **scores)
    if not corrected.strip():
        return corrected, Verdict.drop("line_filter_empty", **scores)
    return corrected, Verdict.ok(**scores)
