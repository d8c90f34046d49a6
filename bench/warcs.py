"""Shared helpers for benchmarks: the shared data folder and HTML pages read from real WARCs."""
from __future__ import annotations

import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        sys.exit(f"{p} is absent: this benchmark needs the shared real data beside the project (../shared/data)")
    return p


def html_pages(path: Path) -> list[tuple[str, bytes, str | None]]:
    """(url, payload bytes, Content-Type) of every HTTP 200 HTML response in a WARC."""
    out = []
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response" or rec.http_headers is None:
                continue
            if rec.http_headers.get_statuscode() != "200":
                continue
            ctype = rec.http_headers.get_header("Content-Type") or ""
            if "html" not in ctype:
                continue
            out.append((rec.rec_headers.get_header("WARC-Target-URI"), rec.content_stream().read(), ctype))
    return out
