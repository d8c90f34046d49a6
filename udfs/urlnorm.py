"""URL normalization for URL deduplication: two spellings of one page get one key.

What is normalized (RFC 3986 section 6 plus the usual crawl habits):
scheme and host lower-cased, a trailing dot on the host dropped, IDN hosts to punycode; default
ports (:80 for http, :443 for https) dropped; user info dropped; the fragment dropped;
percent-escapes upper-cased and escapes of unreserved characters decoded; ``.`` and ``..`` path
segments resolved; an empty path becomes ``/`` and a trailing slash is dropped from any other path;
tracking query parameters (``utm_*``, ``fbclid``, ``gclid``, ...) removed; the remaining parameters
sorted (stable, so repeated keys keep their order); an empty query dropped.
Optionally http and https are one URL (default, since crawls see both) and ``www.`` is ignored.
The key is for comparison only; it is never written back as the document's URL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that only track the click, never select content.
TRACKING_PARAMS = (
    "utm_*", "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id",
    "wickedid", "rb_clickid", "s_cid", "ref_src", "spm",
)

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class UrlNormOptions:
    """What counts as the same URL."""
    ignore_scheme: bool = True          # http://x and https://x are one URL
    strip_www: bool = False             # www.x.org and x.org are one URL
    drop_params: tuple[str, ...] = field(default=TRACKING_PARAMS)   # 'prefix*' matches a prefix

    def drops(self, name: str) -> bool:
        n = name.lower()
        for p in self.drop_params:
            if p.endswith("*"):
                if n.startswith(p[:-1].lower()):
                    return True
            elif n == p.lower():
                return True
        return False


DEFAULT_OPTIONS = UrlNormOptions()


def _fix_escapes(s: str) -> str:
    """Upper-case percent-escapes and decode those of unreserved characters (RFC 3986 6.2.2)."""
    def one(m: re.Match) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()
    return _ESCAPE.sub(one, s)


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segs = path.split("/")
    for i, seg in enumerate(segs):
        if seg == ".":
            if i == len(segs) - 1:
                out.append("")
            continue
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if i == len(segs) - 1:
                out.append("")
            continue
        out.append(seg)
    return "/".join(out)


def _host(netloc_host: str, strip_www: bool) -> str:
    host = netloc_host.lower().rstrip(".")
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # not valid IDNA: keep the lower-cased Unicode host
    if strip_www and host.startswith("www."):
        host = host[4:]
    return host


def normalize_url(url: str | None, opts: UrlNormOptions = DEFAULT_OPTIONS) -> str | None:
    """The comparison key of ``url``; None when there is no usable URL (such docs are never URL duplicates)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname or ""
    except ValueError:  # bad port, bad IPv6 literal: compare the trimmed string as is
        return url or None
    scheme = parts.scheme.lower()
    if not scheme or not hostname:
        return url or None
    host = _host(hostname, opts.strip_www)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    if opts.ignore_scheme and scheme == "https":
        scheme = "http"
    path = _remove_dot_segments(_fix_escapes(parts.path)) or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = ""
    if parts.query:
        params = []
        for item in parts.query.split("&"):
            if not item:
                continue
            name = item.split("=", 1)[0]
            if not opts.drops(_fix_escapes(name)):
                params.append(_fix_escapes(item))
        params.sort(key=lambda p: p.split("=", 1)[0])
        query = "&".join(params)
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
