"""Brute-force, single-process dedup_exact: the yardstick the Spark stage is tested and benchmarked against.

Whole token tuples are dictionary keys (no hashing), windows are visited in the stage's order
(document key, then position), and cutting is re-derived from a per-token mask, so nothing here
shares the stage's hashing, span merging or range code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from udfs.dochash import normalize_text
from udfs.exact_substring import doc_order_key, tokens_regex
from udfs.urlnorm import UrlNormOptions, normalize_url

if TYPE_CHECKING:
    from pipeline.core.config import DedupExactConfig


@dataclass
class RefResult:
    reason: str | None
    text: str | None
    removed_chars: int


def _first_by_rule(group: list[dict], rule: str, has_date: bool) -> dict:
    g = sorted(group, key=lambda d: (d["id"] is None, d["id"] or ""))
    if rule == "longest":
        g = sorted(g, key=lambda d: (d["text"] is None, -len(d["text"] or "")))
    elif has_date:
        g = sorted(g, key=lambda d: d.get("warc_date") or "", reverse=(rule == "latest"))
        g = sorted(g, key=lambda d: d.get("warc_date") is None)
    return g[0]


def _dedup_groups(docs: list[dict], key_fn, rule: str, has_date: bool) -> set[int]:
    groups: dict = {}
    for i, d in enumerate(docs):
        key = key_fn(d)
        if key is not None:
            groups.setdefault(key, []).append(i)
    losers = set()
    for members in groups.values():
        first = _first_by_rule([docs[i] for i in members], rule, has_date)
        losers.update(i for i in members if docs[i] is not first)
    return losers


def _cut(text: str, spans: list[tuple[int, int]], removed: list[bool]) -> str:
    n = len(spans)
    drop = [False] * len(text)
    t = 0
    while t < n:
        if not removed[t]:
            t += 1
            continue
        a = t
        while t < n and removed[t]:
            t += 1
        b = t
        if b < n:
            lo, hi = spans[a][0], spans[b][0]
        elif a > 0:
            lo, hi = spans[a - 1][1], len(text)
        else:
            lo, hi = spans[0][0], len(text)
        for c in range(lo, hi):
            drop[c] = True
    return "".join(ch for ch, d in zip(text, drop) if not d)


def reference_dedup(docs: list[dict], cfg: DedupExactConfig) -> dict[str, RefResult]:
    """id -> RefResult for documents with keys id, url, text (and warc_date when present)."""
    has_date = any("warc_date" in d for d in docs)
    out: dict[str, RefResult] = {}
    live = list(range(len(docs)))
    if cfg.url_dedup:
        opts = UrlNormOptions(cfg.url_ignore_scheme, cfg.url_strip_www, tuple(cfg.url_drop_params))
        losers = _dedup_groups(docs, lambda d: normalize_url(d["url"], opts), cfg.url_keep, has_date)
        for i in losers:
            out[docs[i]["id"]] = RefResult("duplicate_url", docs[i]["text"], 0)
        live = [i for i in live if i not in losers]
    if cfg.doc_dedup:
        sub = [docs[i] for i in live]
        losers = _dedup_groups(sub, lambda d: normalize_text(d["text"], cfg.doc_casefold), cfg.url_keep, has_date)
        for j in losers:
            out[sub[j]["id"]] = RefResult("duplicate_text", sub[j]["text"], 0)
        live = [live[j] for j in range(len(sub)) if j not in losers]
    if not cfg.substring_dedup:
        for i in live:
            out[docs[i]["id"]] = RefResult(None, docs[i]["text"], 0)
        return out
    k = cfg.k
    order = sorted(live, key=lambda i: doc_order_key(docs[i]["id"], docs[i]["text"]))
    seen: set[tuple[str, ...]] = set()
    for i in order:
        text = docs[i]["text"] or ""
        spans = tokens_regex(text, cfg.tokenizer)
        toks = [text[a:b] for a, b in spans]
        removed = [False] * len(toks)
        for p in range(len(toks) - k + 1):
            w = tuple(toks[p:p + k])
            if w in seen:
                for t in range(p, p + k):
                    removed[t] = True
            else:
                seen.add(w)
        if not any(removed):
            out[docs[i]["id"]] = RefResult(None, docs[i]["text"], 0)
            continue
        new = _cut(text, spans, removed)
        n_removed = len(text) - len(new)
        tokens_left = removed.count(False)
        if len(new.strip()) < cfg.min_chars_after_cut or tokens_left < cfg.min_tokens_after_cut:
            out[docs[i]["id"]] = RefResult("exact_substring_removed", docs[i]["text"], n_removed)
        else:
            out[docs[i]["id"]] = RefResult(None, new, n_removed)
    return out
