"""Main text of one HTML page: trafilatura, resiliparse's second opinion on thin pages, boilerplate lines out.

``extractor`` picks the engine: ``trafilatura`` alone (fast mode unless ``fallback``), ``resiliparse`` alone
(DCLM's extractor, main-content heuristics), or ``trafilatura+resiliparse``: trafilatura first, and when its
text is shorter than ``second_opinion_below_chars`` resiliparse too, whose text replaces it only when more than
``second_opinion_factor`` times as long (``pick``). Then, with ``boilerplate_lines``, short lines that are
navigation, share/follow, cookie or consent notices, counters or "related articles" headings are removed
(``drop_boilerplate_lines``, on ``udfs.line_filter``'s navigation and counter rules). Chosen by the worse of two
labelled sets in bench/extraction_quality.py.
"""
from __future__ import annotations

import re
from copy import copy
from typing import TYPE_CHECKING, Callable

import trafilatura
from trafilatura.settings import DEFAULT_CONFIG
from resiliparse.extract.html2text import extract_plain_text

from udfs import trafilatura_xpaths
from udfs.html_tree import PageOptions, install, page
from udfs.line_filter import _alternation, _rules

if TYPE_CHECKING:
    from udfs.extract import ExtractSettings

EXTRACTORS = ("trafilatura", "trafilatura+resiliparse", "resiliparse")
install()  # trafilatura loads udfs.html_tree's Page (trafilatura_text) faster, to the same tree
trafilatura_xpaths.install()  # and, inside trafilatura_xpaths.active(), walks trees for its costliest XPaths

# RefinedWeb's navigation fragments and counter nouns (udfs.line_filter), plus cookie/consent and share/follow
# notices; a short line made only of these (and separators) is boilerplate
_START = ("sign in", "sign up", "log in", "login", "register", "subscribe", "share this", "share on",
          "share this article", "share this story", "follow us on", "share this post", "share this page",
          "skip to content", "skip to main content", "follow us", "back to top", "advertisement", "share",
          "tweet", "email", "print", "comments", "related", "related articles", "related posts", "related stories",
          "related content", "you may also like", "you might also like", "recommended", "more from", "read next",
          "most popular", "trending", "follow", "newsletter", "sponsored", "previous", "next", "home")
_END = ("read more...", "read more", "continue reading", "click here", "show more", "see more", "learn more",
        "more...", "...more", "facebook", "twitter", "linkedin", "pinterest", "whatsapp", "reddit", "email")
_ANYWHERE = ("items in cart", "item in cart", "add to cart", "add to basket", "add to wishlist", "view cart",
             "your cart is empty", "all rights reserved", "accept cookies", "cookie policy", "cookie settings",
             "privacy policy", "terms of use", "terms of service", "share on facebook", "share on twitter",
             "follow us on")
_COUNTER = ("like", "share", "comment", "view", "follower", "following", "reply", "replies", "retweet", "tweet",
            "vote", "point", "reaction", "subscriber", "pin", "repin", "favorite", "favourite", "upvote", "download",
            "read", "star", "fork", "clap", "member", "post")
_NOTICE = re.compile(r"\b(?:(?:we|this (?:site|website)|our (?:site|website)) uses? cookies|use of cookies|"
                     r"cookies? (?:policy|settings|preferences|consent|notice)|accept (?:all )?cookies|"
                     r"(?:manage|your) consent|consent (?:preferences|settings)|gdpr|enable javascript|"
                     r"javascript (?:is )?(?:disabled|required)|ad ?blocker|"
                     r"(?:sign up|subscribe) (?:for|to) (?:our|the) newsletter)\b", re.IGNORECASE)
_SEPARATORS = " \t.,;:!?|/-–—»«·•()[]>"
SHORT_WORDS = 8        # lines of at most this many words may be boilerplate; longer ones are always kept
NOTICE_WORDS = 40      # cookie/consent notices are often one long sentence
LONG_CHARS = 150       # a line this long is never navigation alone (a cheap test before counting words)


_COUNTER_LINE = _rules(_COUNTER, (), (), (), ()).counter  # udfs.line_filter's counter lines ("12 likes")
_SEP = "[" + "".join(re.escape(c) for c in _SEPARATORS) + "]*"
# a line made only of navigation fragments and separators (one fullmatch: it fails at the first other word)
_NAVIGATION = re.compile(rf"{_SEP}(?:(?:{_alternation(_START + _END + _ANYWHERE)}){_SEP})+", re.IGNORECASE)
_NOTICE_KEYS = ("cookie", "consent", "gdpr", "javascript", "blocker", "newsletter")  # in every _NOTICE phrase


def _boilerplate(line: str, n_words: int, notice: bool = True) -> bool:
    """A single line that is boilerplate by itself (no context); ``notice``: the page may hold a notice phrase."""
    if notice and n_words <= NOTICE_WORDS and _NOTICE.search(line):
        return True
    if n_words > SHORT_WORDS:
        return False
    return bool(_COUNTER_LINE.fullmatch(line) or _NAVIGATION.fullmatch(line))


def drop_boilerplate_lines(text: str) -> str:
    """The text without its boilerplate lines (notices, navigation, share/follow, counters); blank lines stay.
    Short lines repeated in a page are not removed: measured, they are mostly lists, tables and code."""
    low = text.lower()
    notice = any(k in low for k in _NOTICE_KEYS)
    out = []
    for ln in text.split("\n"):
        s = ln.strip()
        if s and (notice or len(s) < LONG_CHARS) and _boilerplate(s, len(s.split()), notice):
            continue
        out.append(ln)
    return "\n".join(out).strip("\n")


def trafilatura_options(s: "ExtractSettings") -> dict:
    """trafilatura.extract's keyword arguments for the stage's settings (plain text, no metadata)."""
    return dict(fast=not s.fallback, favor_precision=s.favor_precision, favor_recall=s.favor_recall,
                include_comments=s.include_comments, include_tables=s.include_tables, deduplicate=s.deduplicate,
                with_metadata=False, output_format="txt")


_EXTRACTORS: dict[tuple, PageOptions] = {}


def trafilatura_extractor(s: "ExtractSettings", url: str | None) -> PageOptions:
    """The options object trafilatura.extract builds from ``trafilatura_options(s)`` and the page's URL (as a
    ``udfs.html_tree.PageOptions``, which skips an unused tree copy), copied from one made per setting:
    ``Extractor.__init__`` reads eight settings through configparser and formats today's date (for date
    extraction, which plain text without metadata never runs), ~0.15 ms a page. tests/test_html_tree.py checks
    every field against the one trafilatura builds itself."""
    o = trafilatura_options(s)
    key = tuple(o.items())
    base = _EXTRACTORS.get(key)
    if base is None:
        base = _EXTRACTORS[key] = PageOptions(
            config=DEFAULT_CONFIG, output_format=o["output_format"], fast=o["fast"], precision=o["favor_precision"],
            recall=o["favor_recall"], comments=o["include_comments"], tables=o["include_tables"],
            dedup=o["deduplicate"], with_metadata=o["with_metadata"])
    ex = copy(base)  # date_params and the (empty) blacklists stay shared: read only, and only with metadata
    ex.url = url
    source = url or None  # as Extractor.__init__ sets it
    ex.source = source and source.encode("utf-8", "replace").decode("utf-8")
    return ex


def trafilatura_text(html: str, url: str | None, s: "ExtractSettings", utf8: bytes | None = None) -> str:
    """trafilatura's text of the page, parsed by ``udfs.html_tree`` (the same tree as trafilatura's own loading,
    faster; ``utf8``: the page's UTF-8 bytes when the caller has them), with its options from
    ``trafilatura_extractor``; its costliest XPath expressions answered by ``udfs.trafilatura_xpaths``."""
    with trafilatura_xpaths.active():
        return trafilatura.extract(page(html, utf8), url=url, options=trafilatura_extractor(s, url)) or ""


# resiliparse is C code the per-page time limit (a signal) cannot interrupt, and its time grows with the square
# of the nesting depth (measured: 0.02 s at 1,000 nested <div>s, 3.1 s at 10,000, > 50 s at 100,000); deeper
# pages get no second opinion. Real pages nest a few dozen levels.
MAX_DEPTH = 1000
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*>")  # [^<>]: one pass, also over unclosed '<'
# elements without content or with optional end tags: they do not nest in the parsed tree
_FLAT = frozenset("area base br col embed hr img input link meta param source track wbr p li td th tr dt dd "
                  "option optgroup thead tbody tfoot colgroup caption rp rt".split())


def nested_deeper_than(html: str, limit: int = MAX_DEPTH) -> bool:
    """Whether some element opens inside more than ``limit`` open elements (a linear scan of the tags: an upper
    bound of the parsed tree's depth, since unclosed elements count as open)."""
    depth = 0
    for m in _TAG.finditer(html):
        if m.group(2).lower() in _FLAT or m.group(0).endswith("/>"):
            continue
        if m.group(1):
            depth -= depth > 0
        else:
            depth += 1
            if depth > limit:
                return True
    return False


def resiliparse_text(html: str) -> str:
    """DCLM's extractor: resiliparse's main-content heuristics, block formatting kept, no alt texts or links;
    '' for a page nested deeper than ``MAX_DEPTH`` (its time there is unbounded and uninterruptible)."""
    if nested_deeper_than(html):
        return ""
    return extract_plain_text(html, main_content=True, preserve_formatting=True, alt_texts=False, links=False,
                              list_bullets=False, comments=False) or ""


def pick(first: str, second: str, factor: float = 1.5) -> str:
    """trafilatura's text (first) unless resiliparse's (second) is more than ``factor`` times as long: a thin
    trafilatura result that resiliparse clearly outgrows missed the body (measured: with factor 1, resiliparse's
    slightly longer texts on short news pages were its navigation and captions, not more article)."""
    if len(second.strip()) > factor * len(first.strip()):
        return second
    return first


def main_text(html: str, url: str | None, s: "ExtractSettings", utf8: bytes | None = None) -> str:
    """Main text with the configured extractor ('' when none is found); the caller bounds the time. ``utf8``: the
    page's UTF-8 bytes when the caller has them (the payload it decoded), which saves trafilatura encoding it."""
    return combine(s, lambda: trafilatura_text(html, url, s, utf8), lambda: resiliparse_text(html))


def combine(s: "ExtractSettings", first: Callable[[], str], second: Callable[[], str]) -> str:
    """The configured choice between trafilatura's text (first) and resiliparse's (second), each called only when
    needed, then the boilerplate post-pass (bench/extraction_quality.py passes cached texts)."""
    if s.extractor == "resiliparse":
        text = second()
    else:
        text = first()
        if s.extractor == "trafilatura+resiliparse" and len(text) < s.second_opinion_below_chars:
            text = pick(text, second(), s.second_opinion_factor)
    if s.boilerplate_lines and text:
        text = drop_boilerplate_lines(text)
    return text
