"""An HTML page parsed as trafilatura parses it (``trafilatura.utils.load_html``, trafilatura 2.3.1), for less, and
not copied where the copy is unused.

``load_html`` builds the same tree as trafilatura's own loading. ``udfs.main_text`` hands trafilatura.extract a
``Page`` (the decoded page and its UTF-8 bytes), which ``trafilatura.core.load_html``, extended by ``install`` to that
one type, loads here; any other input (a string, bytes, a tree) loads exactly as before, so other callers in the
process are unaffected. (A parsed tree handed over directly would be copied whole by trafilatura first: +1 ms a
page, measured.) What is saved (measured on news-articles-181, ~170k characters a page):
- trafilatura removes characters XML forbids with a regular expression over the whole page (0.56 ms a page);
  here the page's UTF-8 bytes are checked with numpy (~0.2 ms) and the expression runs only where one is found.
- the parser is trafilatura's (same options), but its element classes come from lxml's C lookup
  (``ElementDefaultClassLookup``: every element an ``HtmlElement``) instead of lxml.html's Python callback, which
  runs for each of the ~1,400 elements a page trafilatura touches (~0.5 ms a page). lxml.html's special classes
  (form, input, select, textarea, label) add form-handling methods that trafilatura does not call.
- the parser reads the UTF-8 bytes the page arrived in (``utf8``) instead of the decoded string.
Together ~1 ms of trafilatura's ~10 ms a page. tests/test_html_tree.py checks that trafilatura's text is the same
as with its own loading, on the shared real pages and on edge cases (forbidden characters, doctypes, a
self-closing <html/>, encoding declarations, fragments, non-HTML, leading Unicode spaces). A page this loader cannot
parse, or would parse otherwise (it starts with a non-ASCII space, where lxml.html's string and bytes tests for a
whole document differ; it holds a lone surrogate), goes to trafilatura's own loading (``None`` here).

The copy: trafilatura's ``_prepare_tree`` cleans a copy of the tree, then copies the cleaned tree whole as a backup
that only two paths read: the comparison with external extractors (not in fast mode) and forum pages with comments
on. When trafilatura.extract's options are a ``PageOptions`` (``udfs.main_text`` passes them) in fast mode without
comments, ``install`` skips that copy (-1.9% of trafilatura's time a page, measured alternating on
news-articles-181; the text is the same by construction and by the tests). Only under trafilatura 2.3.1, whose code
this was read from: under another version, every call goes to trafilatura's own ``_prepare_tree``.
"""
from __future__ import annotations

import re

import numpy as np
import trafilatura.core
from lxml import etree
from copy import copy

from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HTMLParser, HtmlProcessingInstruction, fromstring
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.settings import Extractor
from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, INVALID_XML_CHARS

_LEADING_SPACE = re.compile(r"\s*")
# trafilatura.utils.HTML_PARSER's options
PARSER = HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True)
PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))


def has_invalid_xml_chars(utf8: bytes) -> bool:
    """Whether the UTF-8 text holds a character of ``INVALID_XML_CHARS``: a control character other than tab,
    newline and carriage return (one byte each in UTF-8, never inside a longer sequence), or U+FFFE / U+FFFF
    (EF BF BE / EF BF BF)."""
    a = np.frombuffer(utf8, np.uint8)
    low = a[a < 32]
    if ((low != 9) & (low != 10) & (low != 13)).any():
        return True
    lead = np.flatnonzero(a[:-2] == 0xEF)
    return bool(((a[lead + 1] == 0xBF) & (a[lead + 2] >= 0xBE)).any())


def load_html(html: str, utf8: bytes | None = None) -> HtmlElement | None:
    """trafilatura's tree of ``html`` (a decoded page); ``utf8``: its UTF-8 bytes when the caller has them (the
    payload as it arrived), else they are encoded here. None where trafilatura's own loading should decide
    (the parse failed or found nothing, or the page does not look like HTML)."""
    beginning = html[:50].lower()
    lead = _LEADING_SPACE.match(html).end()
    if lead and not html[:lead].isascii():
        # lxml.html takes a page for a whole document when it starts with whitespace and <html or <!doctype, and
        # its string test counts Unicode spaces (U+00A0, U+3000, ...) that its bytes test does not: a fragment
        # here, a document there
        return None
    raw = utf8
    if raw is None:
        try:
            raw = html.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: trafilatura's own loading decides how far the page goes
            return None
    if has_invalid_xml_chars(raw):
        html, raw = INVALID_XML_CHARS.sub("", html), None
    # trafilatura.utils.repair_faulty_html's two repairs
    if "doctype" in beginning:
        first, sep, rest = html.partition("\n")
        fixed = DOCTYPE_TAG.sub("", first, count=1)
        if fixed != first:
            html, raw = fixed + "\n" + rest, None
        elif not sep:   # trafilatura appends a newline to a page of one line
            html, raw = html + "\n", None
    for line in html[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            html, raw = FAULTY_HTML.sub(r"\1>", html, count=1), None
            break
    try:
        if raw is None:
            raw = html.encode("utf-8")
        tree = fromstring(raw, parser=PARSER)
    except Exception:   # lxml's errors vary by input: trafilatura's loading decides
        return None
    if tree is None or len(tree) < 1 or ("html" not in beginning and len(tree) < 2):
        return None
    return tree


class Page:
    """A decoded page as trafilatura.extract's input (see ``install``); ``utf8``: its UTF-8 bytes, or None."""
    __slots__ = ("html", "utf8")

    def __init__(self, html: str, utf8: bytes | None = None) -> None:
        self.html, self.utf8 = html, utf8


class PageOptions(Extractor):
    """trafilatura's options (the same fields), for a page this module loads: marks the calls whose unused backup
    tree is not made (see above)."""
    __slots__ = ()


_STOCK_LOAD = trafilatura.core.load_html
_STOCK_PREPARE = trafilatura.core._prepare_tree
LEAN_PREPARE = trafilatura.__version__ == "2.3.1"  # the code the unused backup was read from


def _load(htmlobject, max_size: int | None = None):
    if isinstance(htmlobject, Page):
        tree = load_html(htmlobject.html, htmlobject.utf8)
        return tree if tree is not None else _STOCK_LOAD(htmlobject.html, max_size)
    return _STOCK_LOAD(htmlobject, max_size)


def _prepare(tree, options, url):
    if isinstance(options, PageOptions) and options.fast and not options.comments:
        # trafilatura 2.3.1's _prepare_tree less the backup copy, which nothing reads in fast mode without comments
        return convert_tags(tree_cleaning(copy(tree), options), options, url), None
    return _STOCK_PREPARE(tree, options, url)


def install() -> None:
    """Let trafilatura.extract load a ``Page`` with ``load_html``, and skip the unused backup tree for ``PageOptions``
    (idempotent; every other input and options object as before). trafilatura is pinned (2.3.1);
    tests/test_html_tree.py fails if its loading or its text changes."""
    trafilatura.core.load_html = _load
    if LEAN_PREPARE:
        trafilatura.core._prepare_tree = _prepare


def page(html: str, utf8: bytes | None = None) -> Page:
    """trafilatura.extract's input for a decoded page. The hook is put back first if something undid it: trafilatura
    would otherwise turn the unknown type into an empty result, and every page would be lost as empty text."""
    if trafilatura.core.load_html is not _load:
        install()
    return Page(html, utf8)
