"""udfs.html_tree: trafilatura's text from our faster loading equals its text from its own loading."""
from __future__ import annotations

import glob
from codecs import BOM_UTF8

import pytest
import trafilatura
from lxml.html import HtmlElement
from warcio.archiveiterator import ArchiveIterator

from udfs.decode import decode_payload
from udfs.extract import ExtractSettings
from udfs.html_tree import _load, has_invalid_xml_chars, load_html
from udfs.main_text import trafilatura_options, trafilatura_text

S = ExtractSettings()
PROSE = ("The committee met on Tuesday to discuss the new bridge over the river, which has been delayed for "
         "three years. Residents said the detour adds twenty minutes to every trip into town. ")
BODY = f"<body><article><h1>Bridge</h1><p>{PROSE * 3}</p><p>{PROSE * 2}</p></article></body>"


def stock(html: str, url: str | None = None) -> str:
    """trafilatura with its own loading and the stage's settings."""
    return trafilatura.extract(html, url=url, **trafilatura_options(S)) or ""


CONTROLS = BODY.replace("met on", "met\x00 on\x0b").replace("river", "ri\x1fver")
NONCHARS = BODY.replace("bridge", "bri\ufffedge\uffff")
TABS = BODY.replace(" ", "\t", 5)
RU_JA = "Комитет обсудил новый мост через реку. " * 20, "委員会は新しい橋について議論した。" * 20
EDGE = {
    "plain": f"<!DOCTYPE html>\n<html><head><title>t</title></head>{BODY}</html>",
    "forbidden controls": f"<html><head></head>{CONTROLS}</html>",
    "U+FFFE and U+FFFF": f"<html>{NONCHARS}</html>",
    "tabs and CRLF": f"<html>\r\n<head></head>\r\n{TABS}</html>",
    "doctype with a slash": f'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "x/y.dtd"/>\n<html>{BODY}</html>',
    "one line with a doctype": f"<!DOCTYPE html><html>{BODY}</html>",
    "self-closing html": f'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"/>\n{BODY}</html>',
    "encoding declaration": f'<?xml version="1.0" encoding="iso-8859-1"?><html>{BODY}</html>',
    "meta charset": f'<html><head><meta charset="windows-1252"></head>{BODY.replace("river", "rivière")}</html>',
    "non-Latin": f"<html><body><article><p>{RU_JA[0]}</p><p>{RU_JA[1]}</p></article></body></html>",
    "fragment": f"<p>{PROSE * 4}</p>",
    "fragment of two blocks": f"<div><p>{PROSE * 3}</p></div><div><p>{PROSE * 2}</p></div>",
    "no html at all": PROSE * 5,
    "json": '{"a": [1, 2, 3], "b": "<html>"}',
    "empty body": "<html><body></body></html>",
    "no-break space first": f"\xa0<!DOCTYPE html>\n<html>{BODY}</html>",
    "ideographic space first": f"\u3000<html>{BODY}</html>",
    "line separator first": f"\u2028<html><body><div><p>{PROSE * 4}</p></div></body></html>",
    "ASCII spaces first": f" \n\t<html><body><div><p>{PROSE * 4}</p></div></body></html>",
    "byte order mark first": f"\ufeff<!doctype html><html><body><div><p>{PROSE * 4}</p></div></body></html>",
    "empty": "",
    "whitespace": " \n\t ",
}


@pytest.mark.parametrize("name", EDGE)
def test_same_text_as_trafilaturas_own_loading(name):
    html = EDGE[name]
    want = stock(html)
    assert trafilatura_text(html, None, S) == want
    assert trafilatura_text(html, None, S, html.encode("utf-8")) == want


def test_a_lone_surrogate_is_left_to_trafilaturas_loading():
    html = EDGE["plain"].replace("river", "riv\ud800er")
    assert load_html(html) is None and trafilatura_text(html, None, S) == stock(html)


def test_the_hook_is_put_back_if_something_undid_it():
    """Without it trafilatura would take the unknown input type for an empty page, silently."""
    from udfs.html_tree import _STOCK_LOAD
    trafilatura.core.load_html = _STOCK_LOAD
    try:
        assert trafilatura_text(EDGE["plain"], None, S) == stock(EDGE["plain"]) != ""
        assert trafilatura.core.load_html is _load
    finally:
        trafilatura.core.load_html = _load


def test_the_fast_tree_is_used_where_trafilatura_would_parse():
    assert trafilatura.core.load_html is _load          # installed by udfs.main_text
    assert type(load_html(EDGE["plain"])) is HtmlElement   # lxml's C lookup, not lxml.html's Python callback
    assert load_html(EDGE["plain"]) is not None
    assert load_html(EDGE["forbidden controls"]) is not None
    assert load_html(EDGE["no html at all"]) is None      # trafilatura's loading decides those
    assert load_html("") is None


@pytest.mark.parametrize("text, bad", [
    ("plain text\twith tabs\r\nand lines\n", False), ("é ü 中文 \ufffd \ufeff", False),
    ("a\x00b", True), ("a\x08", True), ("\x0b", True), ("\x0c", True), ("\x1f", True), ("\x0e", True),
    ("x\ufffe", True), ("\uffffx", True), ("\uffef\ufffd", False), ("", False),
])
def test_invalid_xml_chars_as_trafilatura_finds_them(text, bad):
    from trafilatura.utils import INVALID_XML_CHARS
    assert bool(INVALID_XML_CHARS.search(text)) == bad
    assert has_invalid_xml_chars(text.encode("utf-8")) == bad


def test_same_text_on_every_real_page_of_the_shared_warcs(shared_data):
    """Every HTML page of the shared WARCs (news-articles-181, the Common Crawl excerpts, ClueWeb09's Japanese
    pages, ...), with and without the payload's bytes."""
    pages = checked = 0
    for path in sorted(glob.glob(str(shared_data / "warc" / "*.warc.gz"))):
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type != "response" or rec.http_headers is None:
                    continue
                ctype = rec.http_headers.get_header("Content-Type") or ""
                if rec.http_headers.get_statuscode() != "200" or "html" not in ctype:
                    continue
                payload = rec.content_stream().read()
                try:
                    html, enc = decode_payload(payload, ctype)
                except ValueError:
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI")
                want = stock(html, url)
                pages += 1
                assert trafilatura_text(html, url, S) == want, url
                if enc == "utf-8" and "\ufffd" not in html and not payload.startswith(BOM_UTF8):
                    checked += 1
                    assert trafilatura_text(html, url, S, payload) == want, url
    assert pages >= 350 and checked >= 300, (pages, checked)


def test_same_text_on_the_readability_test_pages(shared_data):
    """The 130 pages of the second labelled extraction set (blogs, docs, Wikipedia, several languages)."""
    dirs = sorted(p for p in (shared_data / "extraction" / "readability-test-pages").iterdir() if p.is_dir())
    for d in dirs:
        payload = (d / "source.html").read_bytes()
        html, enc = decode_payload(payload, "text/html")
        want = stock(html)
        assert trafilatura_text(html, None, S) == want, d.name
        if enc == "utf-8" and "\ufffd" not in html and not payload.startswith(BOM_UTF8):
            assert trafilatura_text(html, None, S, payload) == want, d.name
    assert len(dirs) >= 120


VARIANTS = {
    "default": S,
    "favor precision": ExtractSettings(favor_precision=True, favor_recall=False),
    "fallback (not fast)": ExtractSettings(fallback=True),
    "comments on": ExtractSettings(include_comments=True),
    "no tables, deduplicate": ExtractSettings(include_tables=False, deduplicate=True),
}


def _slots(o) -> dict:
    from trafilatura.settings import Extractor
    return {k: getattr(o, k) for k in Extractor.__slots__}


@pytest.mark.parametrize("name", VARIANTS)
def test_options_are_the_ones_trafilatura_builds_itself(name, monkeypatch):
    """trafilatura_extractor's copy of one options object per setting has every field trafilatura.extract would
    give its own, for the page's URL (an odd one included)."""
    import trafilatura.core
    from udfs.html_tree import PageOptions
    from udfs.main_text import trafilatura_extractor
    s = VARIANTS[name]
    seen = []
    monkeypatch.setattr(trafilatura.core, "bare_extraction", lambda html, options, **kw: seen.append(options))
    for url in ("https://example.com/a?b=1", None, "", "http://bad.example/\udcff"):
        seen.clear()
        trafilatura.extract("<html></html>", url=url, **trafilatura_options(s))
        ours = trafilatura_extractor(s, url)
        assert type(ours) is PageOptions and type(seen[0]).__name__ == "Extractor"
        assert _slots(ours) == _slots(seen[0]), url
    assert trafilatura_extractor(s, "u1") is not trafilatura_extractor(s, "u1")  # a copy per page: never shared


@pytest.mark.parametrize("name", VARIANTS)
def test_the_unused_backup_tree_is_skipped_only_in_fast_mode_without_comments(name, monkeypatch):
    """udfs.html_tree's _prepare_tree: trafilatura's own for every other options object; the text is the same."""
    import udfs.html_tree as ht
    assert ht.LEAN_PREPARE  # trafilatura is pinned at the version the lean path was read from
    s = VARIANTS[name]
    calls = []
    stock_prepare = ht._STOCK_PREPARE
    monkeypatch.setattr(ht, "_STOCK_PREPARE", lambda *a: calls.append(1) or stock_prepare(*a))
    kw = trafilatura_options(s)
    for page in ("plain", "non-Latin", "fragment of two blocks"):
        html = EDGE[page]
        calls.clear()
        ours = trafilatura_text(html, "https://example.com/", s)
        lean = not calls
        calls.clear()
        assert ours == (trafilatura.extract(html, url="https://example.com/", **kw) or ""), page
        assert calls, "a plain trafilatura.extract call keeps trafilatura's own _prepare_tree"
        assert lean == (not s.fallback and not s.include_comments), page
