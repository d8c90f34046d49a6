"""udfs.trafilatura_xpaths: each tree walk selects the same elements, in the same order, as trafilatura's XPath."""
from __future__ import annotations

import glob
import random
from copy import copy

from lxml import html as lxml_html
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.settings import Extractor
from warcio.archiveiterator import ArchiveIterator

import udfs.main_text  # noqa: F401  (installs the walks, as the extract stage does)
from udfs import trafilatura_xpaths as TX
from udfs.decode import decode_payload
from udfs.html_tree import load_html

OPTIONS = Extractor(fast=True, recall=True, comments=False)


def _diffs(tree) -> list[str]:
    out = []
    for name, index, fn, _ in TX.REPLACED:
        want, got = TX.original(name, index)(tree), fn(tree)
        if len(want) != len(got) or any(a is not b for a, b in zip(want, got)):
            out.append(f"{name}[{index}]: XPath {len(want)} elements, walk {len(got)}")
    return out


def _check(tree, every: int = 1) -> int:
    """The tree and every ``every``-th element under it as the context; returns the contexts checked."""
    contexts = [tree, *list(tree.iter())[1::every]]
    for ctx in contexts:
        assert not _diffs(ctx), (ctx.tag, _diffs(ctx))
    return len(contexts)


def test_installed_only_under_the_pinned_trafilatura():
    assert TX.ENABLED  # pyproject pins trafilatura 2.3.1, whose expressions these walks were read from
    assert len(TX.install()) == len(TX.REPLACED) == 6  # every expression's text is the one its walk was read from
    for name, index, _, digest in TX.REPLACED:
        assert isinstance(getattr(TX.X, name)[index], TX.Walk)
        assert TX.expression_hash(TX.original(name, index)) == digest


def test_outside_active_the_xpath_answers(monkeypatch):
    """Other trafilatura callers in the process are unaffected: the walk runs only inside active()."""
    walk = getattr(TX.X, "OVERALL_DISCARD_XPATH")[0]
    calls = []
    monkeypatch.setattr(walk, "fn", lambda tree: calls.append(tree) or [])
    tree = lxml_html.fromstring('<html><body><div class="sidebar">x</div><p>y</p></body></html>')
    assert [e.get("class") for e in walk(tree)] == ["sidebar"] and not calls
    with TX.active():
        assert walk(tree) == [] and len(calls) == 1
    assert len(walk(tree)) == 1 and len(calls) == 1


# values that hit (and nearly hit) the expressions' tokens, and the attributes they test
VALUES = ["", "comment", "Comments", "commentary", "comol-x", "disqus_thread", "dsq-comments", "article-comments",
          "post-comments", "mvp-post-add-box", "infinite-scroll", "infinitescroll", "elementor-share-buttons x",
          "post", "entry", "articleContent", "article-body", "post_content x", "articleBody", "cookie-bar",
          "nocookie", "sidebar", "share-x", "shared", "social", "nav", "Nav", "navbar", "menu", " ad ", "x ad-1",
          "widget", "footer", "byline", "meta", "slide", "tags", "tag-list", "author", "related", "premium",
          "ad-top", "jp-x", "bmdh", "comments-title", "reply-1", "reply", "hidden", "x hidden", "x hide",
          "hide-print", "noprint", "-reply-", "akismet", "reader-comments", "message", "display:none",
          "color: red; display: none", "MostPopularStories-1", "navigation", "NAV", "main"]
ATTRS = ["id", "class", "style", "role", "itemprop", "data-component", "data-lp-replacement-content", "aria-hidden"]
TAGS = ["div", "section", "aside", "article", "main", "p", "span", "ul", "ol", "li", "details", "list", "item",
        "h1", "a", "table"]


def _element(rng: random.Random, depth: int) -> str:
    tag = rng.choice(TAGS)
    attrs = rng.sample(ATTRS, rng.randint(0, 4))  # in random order: the @id|@class tests take the first
    a = "".join(f' {k}="{"true" if k == "aria-hidden" and rng.random() < .5 else rng.choice(VALUES)}"' for k in attrs)
    kids = "".join(_element(rng, depth + 1) for _ in range(rng.randint(0, 4 if depth < 5 else 0)))
    return f"<{tag}{a}>t{kids}</{tag}>tail"


def test_generated_trees_in_every_attribute_order():
    rng = random.Random(7)
    checked = 0
    for _ in range(60):
        page = f"<html><body>{''.join(_element(rng, 0) for _ in range(6))}</body></html>"
        checked += _check(lxml_html.fromstring(page))
    assert checked > 3000


def test_attribute_order_decides_the_id_or_class_tests():
    for first, second, hit in (('class="cookie"', 'id="x"', 1), ('id="x"', 'class="cookie"', 0),
                               ('id="reply-2"', 'class="x"', 1), ('class="x"', 'id="reply-2"', 0),
                               ('style="x"', 'id="hidden"', 0), ('id="hidden"', 'style="x"', 1)):
        tree = lxml_html.fromstring(f"<html><body><span {first} {second}>a</span></body></html>")
        assert not _diffs(tree)
        assert len(TX.overall_discard(tree) + TX.overall_discard_hidden(tree)) == hit, (first, second)


def test_first_match_per_parent_as_xpaths_positional_predicate():
    tree = lxml_html.fromstring('<html><body><div><div class="post">a</div><div class="entry">b</div></div>'
                                '<section><article class="post">c</article></section></body></html>')
    assert [e.text for e in TX.body_article(tree)] == ["a", "c"]
    assert not _diffs(tree)


def test_every_real_page_raw_and_converted(shared_data):
    """Every HTML page of the shared WARCs: its raw tree (as loaded) and its cleaned and converted tree (where
    OVERALL_DISCARD_XPATH and BODY_XPATH run), each whole and from every 25th element down."""
    opts = Extractor(fast=True, recall=True, comments=False)
    pages = contexts = 0
    for path in sorted(glob.glob(str(shared_data / "warc" / "*.warc.gz"))):
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type != "response" or rec.http_headers is None:
                    continue
                ctype = rec.http_headers.get_header("Content-Type") or ""
                if "html" not in ctype:
                    continue
                try:
                    page, _ = decode_payload(rec.content_stream().read(), ctype)
                except ValueError:
                    continue
                tree = load_html(page)
                if tree is None:
                    continue
                pages += 1
                contexts += _check(tree, 25)
                contexts += _check(convert_tags(tree_cleaning(copy(tree), opts), opts, None), 25)
    assert pages >= 350 and contexts > 10000, (pages, contexts)


def test_a_changed_expression_keeps_its_xpath():
    """Another trafilatura build with an edited expression: that expression is not wrapped, the others are."""
    from lxml import etree
    lst = TX.X.RAW_TREE_PRUNE_XPATH
    saved = lst[1]
    lst[1] = etree.XPath(".//*[self::div][contains(@class, 'elementor-share-buttons-v2')]")
    try:
        done = TX.install()
        assert "RAW_TREE_PRUNE_XPATH[1]" not in done and len(done) == 5
        assert isinstance(lst[1], etree.XPath)
    finally:
        lst[1] = saved
