"""Main text: the boilerplate-line post-pass and the choice between trafilatura and resiliparse, on plain strings."""
from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.core.config import ConfigError, load_config
from pipeline.stages.extract import settings
from udfs.extract import ExtractSettings, extract_text
from udfs.main_text import combine, drop_boilerplate_lines, pick

PROSE = "The river carried small boats past the old mills, and far away it went into the quiet sea."


@pytest.mark.parametrize("line", [
    "We use cookies to improve your experience on our site. By continuing you agree to our cookie policy.",
    "Manage consent preferences",
    "Share on Facebook",
    "Share this article",
    "Follow us on Twitter",
    "Related articles",
    "You may also like",
    "12 comments",
    "Shares: 3",
    "Sign up for our newsletter",
    "Skip to main content",
    "Advertisement",
    "Privacy Policy | Terms of Use",
])
def test_boilerplate_lines_are_removed(line):
    assert drop_boilerplate_lines(f"{PROSE}\n{line}\n{PROSE}") == f"{PROSE}\n{PROSE}"


@pytest.mark.parametrize("line", [
    "Rivers of Europe",                                   # a heading
    "Share prices fell by three percent on Monday after the report was published.",  # 'share' in a sentence
    "Next steps",                                         # a heading whose words are not only navigation
    "Grandma's cookie recipe",                            # cookies that are no notice
    "This site uses cookies, the author wrote, and then spent forty more words explaining how the little "
    "files work, why browsers keep them, what a session is, and how a reader can delete every one of them from "
    "the settings page of any modern browser.",          # over NOTICE_WORDS words: prose, whatever it mentions
])
def test_content_lines_are_kept(line):
    assert drop_boilerplate_lines(f"{PROSE}\n{line}\n{PROSE}") == f"{PROSE}\n{line}\n{PROSE}"


def test_short_lines_repeated_in_the_page_are_kept():
    """Measured on both labelled sets: repeated short lines are mostly list items, table cells and code."""
    text = "\n".join(["Meal 1", PROSE, "Meal 1", "SELECT *", PROSE, "SELECT *"])
    assert drop_boilerplate_lines(text) == text


def test_blank_lines_stay_and_an_all_boilerplate_text_becomes_empty():
    assert drop_boilerplate_lines(f"{PROSE}\n\n{PROSE}") == f"{PROSE}\n\n{PROSE}"
    assert drop_boilerplate_lines("Share on Facebook\nFollow us\n12 likes") == ""


def test_pick_keeps_trafilatura_unless_resiliparse_is_longer_by_the_factor():
    assert pick("short", "a much longer text") == "a much longer text"
    assert pick("same length", "same length") == "same length"
    assert pick("", "anything") == "anything"
    assert pick("abcdefghij", "abcdefghijklmn", factor=1.5) == "abcdefghij"        # 14 chars: not > 15
    assert pick("abcdefghij", "abcdefghijklmnop", factor=1.5) == "abcdefghijklmnop"  # 16 chars


def _never() -> str:
    raise AssertionError("resiliparse was asked although trafilatura's text was long enough")


def test_second_opinion_only_below_the_threshold():
    s = ExtractSettings(second_opinion_below_chars=100, boilerplate_lines=False)
    long_text = "x" * 100
    assert combine(s, lambda: long_text, _never) == long_text
    assert combine(s, lambda: "x" * 99, lambda: "y" * 150) == "y" * 150
    assert combine(s, lambda: "x" * 99, lambda: "y" * 50) == "x" * 99
    assert combine(replace(s, extractor="trafilatura"), lambda: "", _never) == ""
    assert combine(replace(s, extractor="resiliparse"), _never, lambda: "r") == "r"


def test_post_pass_follows_the_setting():
    text = f"{PROSE}\nShare on Facebook"
    s = ExtractSettings(extractor="trafilatura")
    assert combine(s, lambda: text, _never) == PROSE
    assert combine(replace(s, boilerplate_lines=False), lambda: text, _never) == text


def test_real_extractors_on_a_page_trafilatura_finds_thin():
    """Body text in bare <div>s around a long link list: fast trafilatura keeps little; resiliparse keeps the body."""
    body = "".join(f"<div>Paragraph {i}: {PROSE}</div>" for i in range(6))
    html = f"<html><body><div>{body}</div><ul>{''.join(f'<li><a href=/p{i}>Link {i}</a></li>' for i in range(3))}" \
           f"</ul><div>Share on Facebook</div></body></html>"
    alone = extract_text(html, "http://example.com/a", ExtractSettings(extractor="trafilatura"))
    both = extract_text(html, "http://example.com/a", ExtractSettings())
    assert "Paragraph 5" in both and "Share on Facebook" not in both
    assert len(both) >= len(alone) - len("Share on Facebook")


def test_config_keys_reach_the_settings_and_bad_values_fail():
    s = settings(load_config(None, ["extract.extractor=resiliparse", "extract.second_opinion_below_chars=800",
                                    "extract.boilerplate_lines=false"]))
    assert (s.extractor, s.second_opinion_below_chars, s.boilerplate_lines) == ("resiliparse", 800, False)
    assert settings(load_config(None, [])).extractor == "trafilatura+resiliparse"
    with pytest.raises(ConfigError, match="allowed values: trafilatura, trafilatura\\+resiliparse, resiliparse"):
        load_config(None, ["extract.extractor=readability"])
    with pytest.raises(ConfigError, match="extract.fallback"):
        load_config(None, ["extract.extractor=resiliparse", "extract.fallback=true"])
    with pytest.raises(ConfigError, match="second_opinion_below_chars"):
        load_config(None, ["extract.second_opinion_below_chars=-5"])


def test_deep_nesting_gets_no_second_opinion_and_stays_fast():
    import time

    from udfs.main_text import MAX_DEPTH, nested_deeper_than, resiliparse_text
    body = "<p>Deep inside the nested markup there is one short sentence.</p>"
    shallow = "<html><body>" + "<div>" * 50 + body + "</div>" * 50 + "</body></html>"
    deep = "<html><body>" + "<div>" * 100_000 + body + "</div>" * 100_000 + "</body></html>"
    assert not nested_deeper_than(shallow) and nested_deeper_than(deep)
    # siblings and elements with optional end tags do not add depth
    assert not nested_deeper_than("<ul>" + "<li>item" * 5000 + "</ul>" + "<div></div>" * 5000)
    assert nested_deeper_than("<div>" * (MAX_DEPTH + 1)) and not nested_deeper_than("<div>" * MAX_DEPTH)
    assert "one short sentence" in resiliparse_text(shallow)
    t = time.process_time()
    assert resiliparse_text(deep) == ""
    assert time.process_time() - t < 1.0
    # an unclosed '<' never makes the scan quadratic
    t = time.process_time()
    assert not nested_deeper_than("a < b " * 200_000)
    assert time.process_time() - t < 1.0
