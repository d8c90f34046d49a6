"""Common Crawl's layout: which crawls exist and which WARC files each lists.

- ``collinfo.json``: the crawls, newest first (``[{"id": "CC-MAIN-2026-40", ...}, ...]``);
- ``crawl-data/<CRAWL-ID>/warc.paths.gz``: a crawl's WARC files, one path a line, relative to the base;
- ``crawl-data/CC-NEWS/YYYY/MM/warc.paths.gz``: CC-NEWS files of a month, growing every day.
What to follow (``refresh.follow``): crawl ids, ``latest`` (the newest CC-MAIN crawl in collinfo.json),
``CC-NEWS/YYYY/MM``, or ``CC-NEWS`` (this month and last, UTC, so the last files of a month are not missed).
Everything is read through ``pipeline.core.storage`` (HTTP(S) only under ``storage.http_base_urls``; s3:// mirrors).
"""
from __future__ import annotations

import datetime as dt
import json
import re

from pipeline.core.config import ConfigError, RefreshConfig
from pipeline.core.storage import Storage, StorageError, iter_lines, join, scheme

NEWS = "CC-NEWS"
_CRAWL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NEWS_MONTH = re.compile(r"^CC-NEWS/(\d{4})/(\d{2})$")
_MAIN = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")


def check_follow(items: list[str]) -> list[str]:
    for it in items:
        m = _NEWS_MONTH.match(it)
        if it in ("latest", NEWS) or (m and 1 <= int(m.group(2)) <= 12) or (_CRAWL.match(it) and it != NEWS):
            continue
        raise ConfigError(f"refresh.follow: {it!r} is not a crawl to follow; use a crawl id (CC-MAIN-2026-40), "
                          f"latest, CC-NEWS/YYYY/MM or CC-NEWS")
    if not items:
        raise ConfigError("refresh.follow: nothing to follow; name crawls (--follow CC-MAIN-2026-40,CC-NEWS)")
    return items


def collinfo_uri(r: RefreshConfig) -> str:
    if r.collinfo_uri:
        return r.collinfo_uri
    if r.source.rstrip("/") == "https://data.commoncrawl.org":
        return "https://index.commoncrawl.org/collinfo.json"
    return join(r.source, "collinfo.json")


def latest_crawl(store: Storage, uri: str) -> str:
    try:
        crawls = json.loads(store.read_text(uri))
        ids = [c["id"] for c in crawls if _MAIN.match(str(c.get("id", "")))]
    except (ValueError, TypeError, KeyError) as e:
        raise StorageError(f"{uri}: not a collinfo.json crawl list ({type(e).__name__}: {e})") from None
    if not ids:
        raise StorageError(f"{uri}: lists no CC-MAIN crawl")
    return max(ids)


def news_months(today: dt.date) -> list[str]:
    first = today.replace(day=1)
    prev = (first - dt.timedelta(days=1)).replace(day=1)
    return [f"{NEWS}/{prev:%Y/%m}", f"{NEWS}/{today:%Y/%m}"]


def expand(store: Storage, r: RefreshConfig, today: dt.date, warn) -> list[str]:
    """Concrete crawls / CC-NEWS months to list tonight, in the order given (``latest`` resolved)."""
    out: list[str] = []
    for it in check_follow(list(r.follow)):
        if it == "latest":
            try:
                it = latest_crawl(store, collinfo_uri(r))
            except StorageError as e:
                warn(f"cannot resolve `latest`: {e}")
                continue
            out.append(it)
        elif it == NEWS:
            out.extend(news_months(today))
        else:
            out.append(it)
    return list(dict.fromkeys(out))


def listing_uri(base: str, item: str) -> str:
    return join(base, "crawl-data", item, "warc.paths.gz")


def file_url(base: str, path: str) -> str:
    """Where a listed path is read from: relative entries under the source base."""
    return path if "://" in path else join(base, path)


def list_source(store: Storage, base: str, items: list[str], warn) -> list[tuple[str, str]]:
    """(item, path) of every WARC file the listings name; a listing that cannot be read is a warning (a CC-NEWS
    month that has not started yet has none), the night goes on with the others."""
    out: list[tuple[str, str]] = []
    for it in items:
        uri = listing_uri(base, it)
        try:
            paths = [p for p in iter_lines(store, uri) if p.endswith((".warc.gz", ".warc", ".arc.gz"))]
        except (StorageError, OSError, UnicodeDecodeError, EOFError) as e:
            warn(f"{it}: cannot read its listing {uri}: {e}")
            continue
        out.extend((it, p) for p in paths)
    return out


def check_source(store: Storage, base: str) -> None:
    """The source must be a base we may read: HTTP(S) under storage.http_base_urls, or object storage."""
    s = scheme(base)
    if s in ("http", "https"):
        base = base if base.endswith("/") else base + "/"
        if not any(base.startswith(b) for b in store.cfg.http_base_urls):
            raise ConfigError(f"refresh.source: {base} is not under an allowed HTTP base URL "
                              f"({', '.join(store.cfg.http_base_urls)}); add it: "
                              f"--set 'storage.http_base_urls=[{base}]'")
