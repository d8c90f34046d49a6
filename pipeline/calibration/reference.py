"""Clean reference text in one language, for `mdr calibrate-filters`: read, kept to the language, cut in windows.

A reference URI is a JSONL file (a ``text`` or ``article_body`` field per line, e.g. a labelled extraction
ground truth), a text file (one document), or a folder of readability-style test pages
(``<page>/expected.html`` with ``expected-metadata.json`` declaring its ``lang``). Documents from JSONL and
text files are kept when fastText language ID (lid.176) names the language; test pages by their declared
language. Each document is cut into windows of about ``window_chars`` characters at line ends, so a few long
clean articles give a distribution of rule values rather than a handful of points.
"""
from __future__ import annotations

import html
import json
import re

from pipeline.core.storage import Storage, join

_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(?:p|div|h[1-6]|li|tr|blockquote|pre|section|article|figcaption|dd|dt)>|<br\s*/?>",
                        re.IGNORECASE)


def html_text(markup: str) -> str:
    """The text of article markup: blocks on their own lines, tags dropped, entities decoded."""
    text = html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", markup)))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _page_docs(store: Storage, uri: str, lang: str) -> list[str]:
    docs = []
    for meta_uri in sorted(u for u in store.list_files(uri) if u.endswith("/expected-metadata.json")):
        meta = json.loads(store.read_text(meta_uri))
        declared = (meta.get("lang") or meta.get("language") or "").lower().replace("_", "-")
        if declared.split("-")[0] != lang:
            continue
        page = meta_uri.rsplit("/", 1)[0]
        docs.append(html_text(store.read_text(join(page, "expected.html"))))
    return docs


def _file_docs(store: Storage, uri: str) -> list[str]:
    text = store.read_text(uri)
    if not uri.endswith((".jsonl", ".json")):
        return [text]
    docs = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            docs.append(row.get("text") or row.get("article_body") or "")
    return docs


def reference_docs(store: Storage, uris: list[str], lang: str, model=None) -> list[str]:
    """The documents in ``lang`` under the reference URIs (language ID decides for files that do not declare it)."""
    from udfs.langid import identify, load_model
    docs: list[str] = []
    for uri in uris:
        if store.is_dir(uri):
            docs.extend(_page_docs(store, uri, lang))
            continue
        model = model or load_model(None, store)
        docs.extend(d for d in _file_docs(store, uri) if d.strip() and identify(d, model)[0] == lang)
    return [d for d in docs if d.strip()]


def windows(docs: list[str], window_chars: int = 1500) -> list[str]:
    """Each document cut at line ends into pieces of at least ``window_chars`` characters (a shorter tail joins
    the piece before it; a document shorter than that is one window)."""
    out: list[str] = []
    for doc in docs:
        lines = [line for line in doc.split("\n") if line.strip()]
        pieces: list[list[str]] = [[]]
        size = 0
        for line in lines:
            pieces[-1].append(line)
            size += len(line) + 1
            if size >= window_chars:
                pieces.append([])
                size = 0
        if not pieces[-1]:
            pieces.pop()
        elif len(pieces) > 1 and size < window_chars // 2:
            pieces[-2].extend(pieces.pop())
        out.extend("\n".join(p) for p in pieces if p)
    return out
