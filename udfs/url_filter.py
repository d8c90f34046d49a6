"""RefinedWeb's URL filter: blocklisted domains and URLs, adult words in the URL, curated sources left out.

Run before extraction because it is cheap and extraction is not. ``UrlFilter.from_lists`` builds it from
the entries of UT1-format lists (``<root>/<category>/domains``, ``<category>/urls``) and LDNOOBW-layout word
files, read once by the extract stage; the object is plain sets, picklable and small enough to broadcast.
Matching follows RefinedWeb (appendix G.1) and datatrove's URLFilter for the words: the host and
every parent domain against the domain list; the URL (scheme and ``www.`` dropped) and its path
prefixes against the URL list; strict words as any substring of the URL's letters and digits, hard
words (and phrases) as whole URL words, soft words when ``soft_min_distinct`` distinct ones occur.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable
from urllib.parse import unquote, urlsplit

from udfs.verdict import Verdict

if TYPE_CHECKING:
    from pipeline.core.config import UrlFilterConfig

_NON_WORD = re.compile(r"[\W_]+")
_SEGMENT_END = re.compile(r"[/?]")


def _words(text: str) -> tuple[str, ...]:
    """Lower-cased words of letters and digits (any script), as URL words and list entries are compared."""
    return tuple(w for w in _NON_WORD.split(text.lower()) if w)


def _host(url: str) -> tuple[str, str]:
    """(host, rest after the host) of a URL, with or without a scheme; host lower-cased, no port, no dot at the end."""
    parts = urlsplit(url if "://" in url[:12] else "//" + url)
    host = (parts.hostname or "").rstrip(".")
    rest = parts.path or ""
    if parts.query:
        rest += "?" + parts.query
    return host, rest


def _parents(host: str) -> list[str]:
    """``a.b.example.com`` -> itself, ``b.example.com``, ``example.com``, ``com``."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _url_key(entry: str) -> str:
    """A UT1 URL entry or a URL as compared: lower-case, no scheme, no ``www.``, no trailing slash."""
    host, rest = _host(entry.strip())
    if host.startswith("www."):
        host = host[4:]
    return (host + rest.lower()).rstrip("/")


def _url_prefixes(key: str) -> list[str]:
    """The key and each of its prefixes that ends a path segment (UT1 URL entries match as prefixes)."""
    return [key] + [key[:m.start()].rstrip("/") for m in _SEGMENT_END.finditer(key, 1)]


def parse_list(data: bytes) -> list[str]:
    """Non-empty, non-comment lines of a list file (UT1 and LDNOOBW are one entry a line)."""
    text = data.decode("utf-8", errors="replace")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@dataclass(frozen=True)
class UrlFilter:
    domains: frozenset[str]
    urls: frozenset[str]
    strict_words: tuple[str, ...]
    hard_words: frozenset[tuple[str, ...]]   # word tuples: one word, or a phrase
    soft_words: frozenset[tuple[str, ...]]
    soft_min_distinct: int
    curated_domains: frozenset[str]
    # derived in __post_init__ for fast matching: single words as strings, phrases by their first word
    _hard1: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _soft1: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _phrase_first: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _phrase_lens: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        phrases = [w for w in self.hard_words | self.soft_words if len(w) > 1]
        object.__setattr__(self, "_hard1", frozenset(w[0] for w in self.hard_words if len(w) == 1))
        object.__setattr__(self, "_soft1", frozenset(w[0] for w in self.soft_words if len(w) == 1))
        object.__setattr__(self, "_phrase_first", frozenset(w[0] for w in phrases))
        object.__setattr__(self, "_phrase_lens", tuple(sorted({len(w) for w in phrases})))

    @classmethod
    def from_lists(cls, cfg: "UrlFilterConfig", domains: Iterable[str], urls: Iterable[str],
                   words: Iterable[str]) -> "UrlFilter":
        """The filter of ``cfg`` with the entries of its blocklist domain and URL lists and of its word lists (as
        ``parse_list`` gives them; ``pipeline.stages.extract.load_url_filter`` reads them from storage)."""
        soft = {w for w in (_words(s) for s in cfg.soft_words) if w}
        hard = {w for w in (_words(e) for e in words) if w}
        strict = tuple(sorted({"".join(_words(s)) for s in cfg.strict_words} - {""}))
        return cls(frozenset(e.lower().strip(".") for e in domains), frozenset(_url_key(e) for e in urls), strict,
                   frozenset(hard - soft), frozenset(soft), cfg.soft_min_distinct,
                   frozenset(d.lower().strip(".") for d in cfg.curated_domains))

    def check(self, url: str | None) -> Verdict:
        """Keep, or drop with the first rule the URL breaks (curated source, domain, URL, strict, hard, soft)."""
        if not url:
            return Verdict.ok()
        host, _ = _host(url)
        parents = _parents(host) if host else []
        for d in parents:
            if d in self.curated_domains:
                return Verdict.drop("url_curated_source", domain=d)
        for d in parents:
            if d in self.domains:
                return Verdict.drop("url_blocklist_domain", domain=d)
        if self.urls:
            for key in _url_prefixes(_url_key(url)):
                if key in self.urls:
                    return Verdict.drop("url_blocklist_url", entry=key)
        words = _words(unquote(url))
        if self.strict_words:
            joined = "".join(words)
            for w in self.strict_words:
                if w in joined:
                    return Verdict.drop("url_strict_word", word=w)
        if not (self.hard_words or self.soft_words):
            return Verdict.ok()
        found_hard, found_soft = self._find(words)
        if found_hard:
            return Verdict.drop("url_hard_word", word=" ".join(found_hard))
        if len(found_soft) >= self.soft_min_distinct:
            return Verdict.drop("url_soft_words", words=sorted(" ".join(w) for w in found_soft), n_soft=len(found_soft))
        return Verdict.ok(n_soft=len(found_soft))

    def _find(self, words: tuple[str, ...]) -> tuple[tuple[str, ...] | None, set[tuple[str, ...]]]:
        """The first hard word or phrase among the URL's words, and the distinct soft ones."""
        hard = next(((w,) for w in words if w in self._hard1), None)
        if hard:
            return hard, set()
        soft = {(w,) for w in self._soft1.intersection(words)}
        first = self._phrase_first
        for i, w in enumerate(words):
            if w in first:
                for k in self._phrase_lens:
                    gram = words[i:i + k]
                    if len(gram) < k:
                        break
                    if gram in self.hard_words:
                        return gram, soft
                    if gram in self.soft_words:
                        soft.add(gram)
        return None, soft
