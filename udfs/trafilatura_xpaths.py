"""trafilatura's six costliest XPath expressions (trafilatura 2.3.1) as lxml tree walks: the same elements, in the
same order, for less.

These expressions test class and id attributes with EXSLT regular expressions (``re:test``), which lxml runs as a
Python callback per element and attribute, inside libxml2's XPath engine: measured on news-articles-181, trafilatura
spends 3.9 of its 8.8 ms a page evaluating XPath, 3.6 ms of it in these six. Here the elements of the expression's
tags are walked by lxml in C (``iterdescendants(*tags)``), and each condition is the same test in Python: the same
regular expressions through ``re`` (which lxml's ``re:test`` also uses), ``in`` for ``contains``, ``==`` for ``=``.
The XPath subtleties kept:
- ``re:test(@id|@class, ...)`` and ``starts-with(@id|@class, ...)`` test the value of whichever of the two attributes
  comes first in the element's source (XPath's string of a node-set is its first node in document order);
- ``.//*[...][1]`` (BODY_XPATH[0]) is the first match among each element's children, not the first match overall;
- an absent attribute is the empty string.
Trees from lxml's HTML parser (trafilatura's) only: an XML DTD's default attribute values, which ``el.get`` sees
and XPath's ``@class`` does not, cannot occur there; the context is always an element.

``install`` puts them into trafilatura's expression lists (each only while the expression's text is the one it was
read from: its hash is kept here); each keeps its XPath and answers with it unless the
call runs inside ``active()``, which ``udfs.main_text.trafilatura_text`` sets around its trafilatura call: every other
trafilatura call in the process evaluates the XPath as before. tests/test_trafilatura_xpaths.py compares each with
its XPath on every element of the shared real pages' trees (raw and converted) and on attribute-order cases; the
extraction tests compare the text with trafilatura's own on every page.
"""
from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import trafilatura
import trafilatura.xpaths as X
from lxml import etree

_ACTIVE: ContextVar[bool] = ContextVar("mdr_trafilatura_xpaths", default=False)
# the expressions below were read from trafilatura 2.3.1's xpaths.py; the equivalence also rests on lxml's re:test
# (how a node-set becomes a string) and libxml2's attribute order: checked with lxml 6.2.1, pinned in pyproject
ENABLED = trafilatura.__version__ == "2.3.1"


def _first(el, a: str, b: str) -> str:
    """XPath's string of ``@a|@b``: the value of whichever attribute comes first in the element's source."""
    for k, v in el.items():
        if k == a or k == b:
            return v
    return ""


# RAW_TREE_PRUNE_XPATH[0]: infinite-scroll containers
_MVP_SCROLL = re.compile("mvp-post-add-(?:box|wrap)|infinite-?scroll")
_MVP = re.compile("mvp-post-add-(?:box|wrap)")


def raw_prune_scroll(tree) -> list:
    out = []
    for el in tree.iterdescendants("div", "section", "aside"):
        i, c = el.get("id", ""), el.get("class", "")
        if (_MVP_SCROLL.search(i) or _MVP_SCROLL.search(c)) and (
                next(el.iterdescendants("h1"), None) is None or _MVP.search(i) or _MVP.search(c)):
            out.append(el)
    return out


# RAW_TREE_PRUNE_XPATH[1]
def raw_prune_share(tree) -> list:
    return [el for el in tree.iterdescendants("div", "section", "aside")
            if "elementor-share-buttons" in el.get("class", "")]


# REMOVE_COMMENTS_AND_LISTS_XPATH[0]
_COMMENTS_ID_ANY = re.compile(f"^(?:{X._COMMENTS_ID}|disqus_thread|dsq-comments)")
_COMMENTS_ID = re.compile(f"^(?:{X._COMMENTS_ID})")
_COMMENTS_CLASS = re.compile(X._COMMENTS_CLASS)


def remove_comments_and_lists(tree) -> list:
    out = []
    for el in tree.iterdescendants("div", "list", "section", "details", "ol", "ul"):
        i, c = el.get("id", ""), el.get("class", "")
        if not (_COMMENTS_ID_ANY.search(i) or _COMMENTS_CLASS.search(c)):
            continue
        if el.tag not in ("ol", "ul") or _COMMENTS_ID.search(i) or _COMMENTS_CLASS.search(c):
            out.append(el)
    return out


# BODY_XPATH[0]: the first matching child of each element
_ARTICLE_ID = re.compile(X._alt(X._ARTICLE_CONTENT_ID_TOKENS))
_ARTICLE_CLASS = re.compile(X._alt(X._ARTICLE_CONTENT_CLASS_TOKENS))


def body_article(tree) -> list:
    out, parents = [], set()
    for el in tree.iterdescendants("article", "div", "main", "section"):
        c, i = el.get("class"), el.get("id")
        if (c == "post" or c == "entry" or el.get("itemprop") == "articleBody" or i == "articleContent"
                or _ARTICLE_ID.search(i or "") or _ARTICLE_CLASS.search(c or "")):
            parent = el.getparent()
            if parent not in parents:
                parents.add(parent)
                out.append(el)
    return out


# OVERALL_DISCARD_XPATH[0]
_CONSENT = re.compile(X._alt(X._CONSENT_ID_CLASS_TOKENS))
_DISCARD_ID = re.compile(X._alt(X._OVERALL_DISCARD_BOTH_TOKENS + X._OVERALL_DISCARD_ID_TOKENS))
_DISCARD_CLASS = re.compile(X._alt(X._OVERALL_DISCARD_BOTH_TOKENS + X._OVERALL_DISCARD_CLASS_TOKENS))


def overall_discard(tree) -> list:
    out = []
    for el in tree.iterdescendants("div", "item", "list", "p", "section", "span"):
        if (el.get("data-lp-replacement-content") is not None
                or "nav" in el.get("role", "").replace("N", "n")
                or "MostPopularStories" in el.get("data-component", "")
                or _CONSENT.search(_first(el, "id", "class"))
                or _DISCARD_ID.search(el.get("id", ""))
                or _DISCARD_CLASS.search(el.get("class", ""))):
            out.append(el)
    return out


# OVERALL_DISCARD_XPATH[1]: any element
_HIDDEN_ID = re.compile("reader-comments|akismet")
_HIDDEN_CLASS = re.compile("^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|"
                           "hide-print| hidden| hide|noprint|notloaded")


def overall_discard_hidden(tree) -> list:
    out = []
    for el in tree.iterdescendants(etree.Element):
        if not el.attrib:
            continue  # every condition below needs an attribute
        c, style = el.get("class", ""), el.get("style", "")
        if (c == "comments-title"
                or _first(el, "id", "class").startswith("reply-")
                or "hidden" in _first(el, "id", "style")
                or "display:none" in style or "display: none" in style
                or _HIDDEN_ID.search(el.get("id", ""))
                or _HIDDEN_CLASS.search(c)
                or el.get("aria-hidden") == "true"):
            out.append(el)
    return out


class Walk:
    """One of trafilatura's XPath objects, answered by ``fn`` inside ``active()`` and by itself elsewhere."""

    def __init__(self, xpath: etree.XPath, fn: Callable) -> None:
        self.xpath, self.fn = xpath, fn

    def __call__(self, tree, **variables):
        if variables or not _ACTIVE.get():
            return self.xpath(tree, **variables)
        return self.fn(tree)

    def __getattr__(self, name):  # .path and the rest, as the XPath object has them
        return getattr(self.xpath, name)


# (list of trafilatura.xpaths, index, tree walk, sha256 prefix of the expression it was read from)
REPLACED = (("RAW_TREE_PRUNE_XPATH", 0, raw_prune_scroll, "77023cff86242dc8"),
            ("RAW_TREE_PRUNE_XPATH", 1, raw_prune_share, "3c7afe92279543d5"),
            ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0, remove_comments_and_lists, "ec1083e558ae70c0"),
            ("BODY_XPATH", 0, body_article, "8cab6e6e5b503a8d"),
            ("OVERALL_DISCARD_XPATH", 0, overall_discard, "d9e4b7d7125b4838"),
            ("OVERALL_DISCARD_XPATH", 1, overall_discard_hidden, "9abb7217d588fd5a"))


def expression_hash(xpath: etree.XPath) -> str:
    """sha256 prefix of the expression's text, whitespace collapsed."""
    return hashlib.sha256(" ".join(xpath.path.split()).encode()).hexdigest()[:16]


def original(name: str, index: int) -> etree.XPath:
    """trafilatura's own XPath object at ``trafilatura.xpaths.<name>[index]``."""
    x = getattr(X, name)[index]
    return x.xpath if isinstance(x, Walk) else x


def install() -> list[str]:
    """Wrap the six expressions in trafilatura's lists (idempotent; only under trafilatura 2.3.1, and each only
    while its text is the one its walk was read from); returns the ones wrapped. The lists are the objects
    trafilatura's modules imported, so they see the wrappers."""
    done = []
    if not ENABLED:
        return done
    for name, index, fn, digest in REPLACED:
        lst = getattr(X, name)
        if len(lst) > index and isinstance(lst[index], etree.XPath) and expression_hash(lst[index]) == digest:
            lst[index] = Walk(lst[index], fn)
        if len(lst) > index and isinstance(lst[index], Walk):
            done.append(f"{name}[{index}]")
    return done


@contextmanager
def active():
    """Inside: the wrapped expressions are answered by the tree walks."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
