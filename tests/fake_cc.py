"""A fake Common Crawl for refresh tests: a real HTTP server on 127.0.0.1 serving ``collinfo.json``,
``crawl-data/<item>/warc.paths.gz`` and WARC files generated here (English articles that survive extraction
and the RefinedWeb filters), with faults per file: ``missing`` (listed, 404), ``5xx`` (always 503),
``flaky`` (503 on the first request, then served), ``truncate`` (every response stops at half the file while
announcing the whole length, Range requests included).
"""
from __future__ import annotations

import gzip
import io
import random
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.s3server import serve_http, stop_http
from tests.warcgen import response_record, write_warc

NOUNS = ("river garden village teacher market window kitchen library station harbour mountain forest bridge castle "
         "meadow orchard workshop lantern journey letter painting festival neighbour museum valley island bakery "
         "cottage farmer sailor engine carpenter violin blanket ladder chimney tractor pond canal hedge barn").split()
VERBS = ("visited painted repaired discovered described followed crossed opened remembered collected watched carried "
         "built explored measured planted cleaned borrowed mended photographed sketched counted").split()
ADJS = ("quiet ancient narrow bright distant gentle crowded famous hidden wooden careful patient curious cheerful "
        "modest sturdy dusty golden muddy peaceful").split()
ADVS = "slowly often quietly carefully early rarely gladly patiently".split()
TEMPLATES = [
    "The {a} {n} {v} the {n2} near the {a2} {n3}.",
    "In the morning, a {a} {n} {adv} {v} an old {n2} and a {n3}.",
    "Many people in the {n} say that the {n2} was {a} and {a2} before anyone {v} it.",
    "We {adv} {v} the {n} with our {n2}, and the result was {a}.",
    "My grandmother {v} a {a} {n} every summer, and she never forgot the {n2}.",
    "Nobody expected that the {n} behind the {n2} would be so {a}.",
    "After lunch the children {v} the {a} {n} and talked about the {n2} for hours.",
    "There is a {a} {n} at the end of the road, where the {n2} meets the {n3}.",
    "A {a} {n} is worth more than a {a2} {n2}, or so the {n3} told us.",
    "When the {n} was {v}, the whole {n2} came to see the {a} {n3}.",
    "It took us three days to reach the {a} {n}, because the {n2} had been {v}.",
    "Our {n} has always been {a}, even when the {n2} was {a2}.",
    "Later that week, the {n} {v} a letter about the {a} {n2}.",
    "Some visitors {adv} {v} the {n}, while others preferred the {a} {n2}.",
    "The old {n} still stands beside the {n2}, {a} and {a2} as ever.",
    "I {adv} {v} that the {n} was more {a} than the {n2} in the {n3}.",
]


def article(seed: int) -> tuple[str, str]:
    """(title, text) of a made-up English article: 14-18 sentences in three paragraphs."""
    rng = random.Random(seed)

    def fill(t: str) -> str:
        n, n2, n3 = rng.sample(NOUNS, 3)
        a, a2 = rng.sample(ADJS, 2)
        return t.format(n=n, n2=n2, n3=n3, a=a, a2=a2, v=rng.choice(VERBS), adv=rng.choice(ADVS))

    sentences = [fill(t) for t in rng.sample(TEMPLATES, rng.randint(14, 16))]
    k = len(sentences) // 3
    paras = [" ".join(sentences[:k]), " ".join(sentences[k:2 * k]), " ".join(sentences[2 * k:])]
    title = fill("The {a} {n} and the {n2}").title()
    return title, "\n\n".join(paras)


def html(title: str, text: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<header><a href=\"/\">Home</a></header><article><h1>{title}</h1>{body}</article>"
            f"<footer>Contact us</footer></body></html>").encode()


def nearly(text: str, seed: int, changes: int = 2) -> str:
    """The same text with ``changes`` words replaced: a near duplicate (5-gram Jaccard about 0.85-0.9)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in rng.sample(range(5, len(words) - 5), changes):
        words[i] = rng.choice(["remarkable", "yesterday", "certainly", "perhaps"])
    return " ".join(words)


def warc_bytes(tmp_path, name: str, pages: list[tuple[str, str, str]], date: str = "2099-01-15T00:00:00Z",
               filler_bytes: int = 0) -> bytes:
    """A WARC of 200 responses, one per (url, title, text); ``filler_bytes``: an incompressible image record in the
    middle (not HTML: dropped at once), so that a cut at half the file falls after the first pages were read."""
    path = tmp_path / name
    records = [response_record(u, html(t, x), date=date) for u, t, x in pages]
    if filler_bytes:
        blob = random.Random(0).randbytes(filler_bytes)
        records.insert(len(records) // 2, response_record("https://img.example.org/big.jpg", blob,
                                                          content_type="image/jpeg", date=date))
    write_warc(str(path), records)
    return path.read_bytes()


class FakeCC:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.listings: dict[str, list[str]] = {}
        self.hits: Counter = Counter()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def set_collinfo(self, crawl_ids: list[str]) -> None:
        import json
        self.files["collinfo.json"] = json.dumps([{"id": c, "name": c} for c in crawl_ids]).encode()

    def publish(self, item: str, name: str, data: bytes | None, fault: str | None = None) -> str:
        """Add a WARC to ``item``'s listing (and serve it, unless it is ``missing``); returns its path."""
        segment = "segments/1/warc" if item.startswith("CC-MAIN") else ""
        path = "/".join(x for x in ("crawl-data", item, segment, name) if x)
        if data is not None:
            self.files[path] = data
        if fault:
            self.faults[path] = fault
        self.listings.setdefault(item, []).append(path)
        self.files[f"crawl-data/{item}/warc.paths.gz"] = gzip.compress("\n".join(self.listings[item]).encode() + b"\n",
                                                                        mtime=0)
        return path

    def start(self) -> "FakeCC":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                path = self.path.lstrip("/").split("?")[0]
                fake.hits[path] += 1
                fault = fake.faults.get(path)
                if fault == "5xx" or (fault == "flaky" and fake.hits[path] == 1):
                    return self._status(503)
                data = fake.files.get(path)
                if data is None or fault == "missing":
                    return self._status(404)
                start = 0
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes=") and rng[6:].rstrip("-").isdigit():
                    start = int(rng[6:].rstrip("-"))
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                end = len(data) // 2 if fault == "truncate" else len(data)
                if start < end:
                    self.wfile.write(data[start:end])
                self.wfile.flush()
                self.close_connection = True

            def _status(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = serve_http(Handler)
        return self

    def stop(self) -> None:
        stop_http(self._server)


def gz_lines(data: bytes) -> list[str]:
    return gzip.GzipFile(fileobj=io.BytesIO(data)).read().decode().split()
