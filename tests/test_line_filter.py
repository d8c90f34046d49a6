"""RefinedWeb line-wise corrections: each removal/edit rule, and the 5%-of-words document threshold."""
from __future__ import annotations

import dataclasses

import pytest

from pipeline.core.config import LineFilterConfig
from udfs.line_filter import correct_lines

L = LineFilterConfig()
# 95 words of ordinary prose in one line: a document body that no rule touches
BODY = " ".join(["the", "quiet", "river", "carried", "small", "boats", "past", "old", "mills"] * 10 + ["and", "far",
                                                                                                     "away", "it", "went"])


def lines_kept(*lines: str, cfg: LineFilterConfig = L) -> list[str]:
    return correct(*lines, cfg=cfg)[0]


def correct(*lines: str, cfg: LineFilterConfig = L) -> tuple[list[str], dict[str, int]]:
    """(the lines kept after BODY, removed lines per rule) for BODY followed by ``lines``."""
    text, verdict = correct_lines("\n".join((BODY,) + lines), dataclasses.replace(cfg, max_removed_words_share=1.0))
    assert verdict.keep
    return text.split("\n")[1:], verdict.scores["lines_removed_by"]


@pytest.mark.parametrize("line, rule", [
    ("Contents", "few_words"),                          # one word
    ("Contents here", None),
    ("12,345 / 2021-03-04 12:30", "numeric"),           # only numbers
    ("12 apples", None),
    ("12 likes", "counter"),                            # counters
    ("1.2K Views", "counter"),
    ("Comments: 3", "counter"),
    ("3 comments 14 shares", "counter"),
    ("I like 3 dogs", None),
    ("BREAKING NEWS tonight", "uppercase"),             # 12 of 19 letters uppercase
    ("NASA and ESA launch", None),                      # 7 of 15: not mostly
])
def test_line_removal_rules(line, rule):
    # each line is removed by exactly the rule named, or kept as it is
    assert correct(line) == (([], {rule: 1}) if rule else ([line], {}))


def test_uppercase_share_boundary():
    assert correct("ABCD efgh") == (["ABCD efgh"], {})          # 4 of 8 letters: not more than half
    assert correct("ABCDE fgh") == ([], {"uppercase": 1})       # 5 of 8


def test_counter_and_navigation_rules_stop_at_max_pattern_line_words():
    ten = "12 likes 3 shares 4 comments 5 views 6 replies"          # 10 words: a counter line
    assert correct(ten) == ([], {"counter": 1})
    assert correct(ten + " 7 votes") == ([ten + " 7 votes"], {})  # 12 words: past the limit, kept
    nine = " ".join(["word"] * 9)
    assert correct("Sign in " + nine[5:]) == (["word " * 7 + "word"], {})  # 10 words: edited
    assert correct("Sign in " + nine) == (["Sign in " + nine], {})        # 11 words: not edited


@pytest.mark.parametrize("line, kept, removed_by", [
    ("Sign in to see your orders", ["to see your orders"], {}),
    ("Great match last night. Read more »", ["Great match last night."], {}),
    ("You have 3 items in cart now", ["You have 3 now"], {}),
    ("Read more", [], {"navigation": 1}),               # nothing left: the line goes
    ("Sign in | Register", [], {"few_words": 1}),       # the start fragment goes, one word is left
    ("Subscribe now", [], {"few_words": 1}),            # one word left after the edit
    ("Copyright 2024 Example Ltd. All rights reserved.", ["Copyright 2024 Example Ltd."], {}),
    ("Signing information for the new program is here", ["Signing information for the new program is here"], {}),
])
def test_navigation_fragments_are_edited_out_of_short_lines(line, kept, removed_by):
    assert correct(line) == (kept, removed_by)


def test_long_lines_are_not_edited():
    line = "Sign in " + " ".join(["word"] * 9)               # 11 words: past max_pattern_line_words
    assert lines_kept(line) == [line]


def test_document_dropped_past_five_percent_of_words():
    inside = "\n".join([BODY] + ["Menu"] * 5)           # 5 of 100 words removed
    text, v = correct_lines(inside, L)
    assert v.keep and v.scores["line_removed_words_share"] == 0.05 and text == BODY
    outside = "\n".join([BODY] + ["Menu"] * 6)          # 6 of 101
    text, v = correct_lines(outside, L)
    assert v.reason == "line_filter_removed_too_much"
    assert v.scores["line_removed_words_share"] == pytest.approx(6 / 101) and v.scores["lines_removed"] == 6
    assert v.scores["lines_removed_by"] == {"few_words": 6}


def test_edited_words_count_towards_the_threshold():
    text, v = correct_lines(BODY + "\nSign in to see orders", L)        # 2 of 100 words edited out
    assert v.keep and v.scores["line_removed_words_share"] == 0.02 and v.scores["lines_edited"] == 1


def test_blank_lines_and_untouched_lines_are_kept_as_they_are():
    text, v = correct_lines(f"  {BODY}\n\n{BODY}", L)
    assert v.keep and text == f"  {BODY}\n\n{BODY}"


def test_empty_document_is_dropped():
    assert correct_lines("", L)[1].reason == "line_filter_empty"
    assert correct_lines("Menu", dataclasses.replace(L, max_removed_words_share=1.0))[1].reason == "line_filter_empty"


def test_rules_can_be_turned_off():
    off = dataclasses.replace(L, min_line_words=0, remove_numeric=False, remove_counters=False,
                              max_uppercase_share=None, start_patterns=[], end_patterns=[], anywhere_patterns=[])
    lines = ["Contents", "12,345", "12 likes", "ALL CAPS LINE", "Sign in now"]
    assert lines_kept(*lines, cfg=off) == lines


C4 = dataclasses.replace(L, min_line_words=3, require_terminal_punct=True, remove_line_substrings=["javascript"],
                         drop_doc_substrings=["lorem ipsum", "{"], max_uppercase_share=None, remove_numeric=False,
                         remove_counters=False, start_patterns=[], end_patterns=[], anywhere_patterns=[])


@pytest.mark.parametrize("line, rule", [
    ("Two words.", "few_words"),                         # C4: at least 3 words
    ("Three words here.", None),
    ("No full stop at the end", "no_terminal_punct"),    # C4: terminal punctuation
    ('He said "stop here."', None),
    ("It trails off like this...", "no_terminal_punct"),
    ("Please enable JavaScript to view this page.", "substring"),
])
def test_c4_line_rules(line, rule):
    text, v = correct_lines(f"{BODY}.\n{line}", dataclasses.replace(C4, max_removed_words_share=1.0))
    assert v.keep and text.split("\n")[1:] == ([] if rule else [line])
    assert v.scores["lines_removed_by"] == ({rule: 1} if rule else {})


def test_c4_document_substrings():
    text, v = correct_lines(BODY + ".\nLorem Ipsum dolor sit amet.", C4)
    assert (v.reason, v.scores["substring"]) == ("line_filter_doc_substring", "lorem ipsum")
    assert correct_lines(BODY + ".\nfunction f() { return 1; }", C4)[1].reason == "line_filter_doc_substring"
    assert correct_lines(BODY + ".", C4)[1].keep


def test_presets_load_and_apply_c4_rules(cfg_factory):
    c4, fineweb, refinedweb = (cfg_factory(preset=p) for p in ("c4", "fineweb", "refinedweb"))
    assert refinedweb.filter.lines == LineFilterConfig() and refinedweb.filter.quality.enabled
    assert not c4.filter.repetition.enabled and not c4.filter.quality.enabled and c4.extract.langid.min_score == 0.99
    assert fineweb.filter.repetition.enabled and fineweb.dedup_fuzzy.preset == "fineweb"
    doc = f"{BODY}.\nMenu\nNo full stop at the end\nWe use cookies to improve your experience."
    assert correct_lines(doc, c4.filter.lines)[0] == f"{BODY}."
    assert correct_lines(doc, fineweb.filter.lines)[0] == f"{BODY}.\nNo full stop at the end"
    assert correct_lines(doc, refinedweb.filter.lines)[1].keep is True
