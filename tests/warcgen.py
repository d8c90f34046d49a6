"""Builders for test WARC files: well-formed records via warcio, and generators of broken inputs.

Every broken-case generator writes one file and returns an ``Expected``: what a correct, lenient
reader should see (how many records, whether it must report a read error, decoded pages). Files are
deterministic: fixed dates, record ids derived from the URL, gzip members with mtime 0.
"""
from __future__ import annotations

import gzip as _gzip
import hashlib
import io
import random
import re
import uuid
import zlib
from dataclasses import dataclass, field

import brotli
from warcio.recordbuilder import RecordBuilder
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DATE = "2024-01-01T00:00:00Z"
REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 302: "Found", 404: "Not Found",
           500: "Internal Server Error"}
_BUILDER = RecordBuilder(warc_version="WARC/1.0")


@dataclass
class Expected:
    """What a correct reader should get from a generated file."""
    path: str
    records: int                 # records a correct reader yields (every WARC-Type) before any error
    responses: int               # of which are response records
    error: bool = False          # the file is damaged past those records: the reader must report it, not crash
    recoverable: int | None = None  # records a reader that resynchronises after damage can get (None: = records)
    pages: dict[str, bytes] = field(default_factory=dict)   # url -> HTTP entity with transfer/content coding removed
    texts: dict[str, str] = field(default_factory=dict)     # url -> the page's real text (charset cases)
    detail: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- well-formed records (warcio)

def record_id(*parts: object) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '|'.join(map(str, parts)))}>"


_UUID = re.compile(rb"<urn:uuid:([0-9A-Fa-f-]{36})>")


def relabel(data: bytes, salt: object) -> bytes:
    """A copy of a WARC (gzipped member by member, or plain) with new record ids, the same length, pages unchanged:
    the same documents as the original, but other records (a WARC given twice is the same records twice)."""
    def swap(m: re.Match) -> bytes:
        return b"<urn:uuid:%s>" % str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}|{m.group(1).decode()}")).encode()
    if data[:2] != b"\x1f\x8b":
        return _UUID.sub(swap, data)
    out = []
    while data:
        d = zlib.decompressobj(31)
        out.append(gzip_member(_UUID.sub(swap, d.decompress(data))))
        data = d.unused_data
    return b"".join(out)


def response_record(url: str, body: bytes, headers: list[tuple[str, str]] | tuple = (), status: int = 200,
                    content_type: str | None = "text/html; charset=utf-8", date: str = DATE,
                    reason: str | None = None, content_length: bool = True):
    """A warcio response record; Content-Type/Content-Length HTTP headers are added unless given or disabled."""
    hdrs = list(headers)
    names = {k.lower() for k, _ in hdrs}
    if content_type is not None and "content-type" not in names:
        hdrs.insert(0, ("Content-Type", content_type))
    if content_length and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    http = StatusAndHeaders(f"{status} {reason or REASONS.get(status, 'OK')}", hdrs, protocol="HTTP/1.1")
    return _BUILDER.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body), http_headers=http,
                                       warc_headers_dict={"WARC-Date": date, "WARC-Record-ID": record_id(url, date, status)})


def request_record(url: str, date: str = DATE):
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    http = StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", url.split("/")[2]), ("User-Agent", "mdr-test")],
                            is_http_request=True)
    return _BUILDER.create_warc_record(url, "request", http_headers=http,
                                       warc_headers_dict={"WARC-Date": date, "WARC-Record-ID": record_id(url, date, "req")})


def warcinfo_record(filename: str = "test.warc.gz", date: str = DATE):
    block = b"software: mdr tests/warcgen.py\r\nformat: WARC File Format 1.0\r\n"
    return _BUILDER.create_warc_record("", "warcinfo", payload=io.BytesIO(block), length=len(block),
                                       warc_content_type="application/warc-fields",
                                       warc_headers_dict={"WARC-Date": date, "WARC-Filename": filename,
                                                          "WARC-Record-ID": record_id("warcinfo", filename)})


def write_warc(path: str, records: list, gzip: bool = True) -> str:
    """Write warcio records (one gzip member each when ``gzip``)."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=gzip, warc_version="WARC/1.0")
        for rec in records:
            writer.write_record(rec)
    return path


def write_pages(path: str, pages: list[tuple[str, bytes]], gzip: bool = True,
                content_type: str = "text/html; charset=utf-8") -> Expected:
    """A WARC of plain 200 responses, one per (url, body)."""
    write_warc(path, [response_record(u, b, content_type=content_type) for u, b in pages], gzip)
    return Expected(path, len(pages), len(pages), pages=dict(pages))


# --------------------------------------------------------------------------- raw bytes (for records warcio won't write)

def gzip_member(data: bytes) -> bytes:
    """A gzip member with mtime 0."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def raw_record(headers: list[tuple[str, str]], block: bytes, version: str = "WARC/1.0",
               content_length: int | None = None) -> bytes:
    """Serialise a record by hand; ``content_length`` overrides the true block length (to lie)."""
    cl = len(block) if content_length is None else content_length
    head = f"{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {cl}\r\n\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def raw_response(url: str, http_block: bytes, version: str = "WARC/1.0", content_length: int | None = None,
                 date: str = DATE) -> bytes:
    return raw_record([("WARC-Type", "response"), ("WARC-Date", date), ("WARC-Record-ID", record_id(url, date, version)),
                       ("WARC-Target-URI", url), ("Content-Type", "application/http; msgtype=response")],
                      http_block, version, content_length)


def http_block(body: bytes, headers: list[tuple[str, str]] | tuple = (), status: int = 200,
               content_type: str | None = "text/html; charset=utf-8") -> bytes:
    hdrs = ([("Content-Type", content_type)] if content_type else []) + list(headers)
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    return head.encode("latin-1") + body


def page(n: int, words: int = 60, title: str | None = None) -> bytes:
    """A small, valid English HTML page whose text differs with ``n``."""
    rng = random.Random(n)
    bank = ["the", "garden", "river", "morning", "was", "quiet", "and", "we", "walked", "along", "path", "to", "old",
            "mill", "where", "friends", "met", "every", "week", "for", "coffee", "talk", "about", "books", "weather"]
    text = " ".join(rng.choice(bank) for _ in range(words)).capitalize() + "."
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title or f'Page {n}'}</title></head>"
            f"<body><article><h1>Page {n}</h1><p>{text}</p></article></body></html>").encode()


def _resp_member(url: str, body: bytes, **kw) -> bytes:
    return gzip_member(raw_response(url, http_block(body, **kw)))


# --------------------------------------------------------------------------- broken cases

def truncated_gzip(path: str, n_before: int = 3, n_after: int = 3) -> Expected:
    """A gzip member cut in half between good members: readers get n_before records, then an error."""
    members = [_resp_member(f"https://trunc.example/{i}", page(i)) for i in range(n_before + 1 + n_after)]
    broken = members[n_before][: len(members[n_before]) // 2]
    with open(path, "wb") as f:
        f.write(b"".join(members[:n_before]) + broken + b"".join(members[n_before + 1:]))
    return Expected(path, n_before, n_before, error=True, recoverable=n_before + n_after,
                    pages={f"https://trunc.example/{i}": page(i) for i in range(n_before)},
                    detail={"damaged_offset": sum(map(len, members[:n_before])), "after_damage": n_after})


def content_length_lie(path: str, too: str = "long", gzip: bool = True, n: int = 5, index: int = 2,
                       delta: int = 200) -> Expected:
    """Record ``index`` declares ``delta`` bytes more (too="long") or fewer (too="short") than its block has.

    Too long inside its own gzip member: the member ends first, so a reader gets every record (the lying
    one short). In every other case the reader lands mid-block: it gets the records up to and including
    the lying one (its block wrong), then must report an error; ``recoverable`` is what a reader that
    scans for the next record (gzip member or "WARC/" line) can still get.
    """
    assert too in ("long", "short")
    out = bytearray()
    bodies = {}
    for i in range(n):
        url = f"https://cl.example/{i}"
        body = page(i, words=150).replace(b". ", b".\n") + b"\n" + b"<p>line</p>\n" * 30
        bodies[url] = body
        blk = http_block(body)
        cl = None if i != index else len(blk) + (delta if too == "long" else -delta)
        rec = raw_response(url, blk, content_length=cl)
        out += gzip_member(rec) if gzip else rec
    with open(path, "wb") as f:
        f.write(out)
    lie_url = f"https://cl.example/{index}"
    detail = {"lying_url": lie_url, "too": too, "delta": delta, "gzip": gzip}
    if gzip and too == "long":
        return Expected(path, n, n, pages={u: b for u, b in bodies.items() if u != lie_url}, detail=detail)
    # uncompressed and too long: the lie swallows the head of the next record
    recoverable = n - 1 if (too == "long" and not gzip) else n
    return Expected(path, index + 1, index + 1, error=True, recoverable=recoverable,
                    pages={u: b for i, (u, b) in enumerate(bodies.items()) if i < index}, detail=detail)


def not_a_warc(path: str, kind: str = "html") -> Expected:
    """A file named like a WARC that is not one: html | gzip_text | random | empty.

    Only "empty" is not an error (zero records). Note: warcio 1.8.1 takes the first line of gzip_text
    ("this is a log file, ...") for an ARC header and yields one bogus "arc" record before failing.
    """
    data = {"html": b"<!DOCTYPE html><html><body><h1>Index of /crawl</h1></body></html>\n" * 20,
            "gzip_text": gzip_member(b"this is a log file, not a WARC\n" * 200),
            "random": random.Random(7).randbytes(4096),
            "empty": b""}[kind]
    with open(path, "wb") as f:
        f.write(data)
    return Expected(path, 0, 0, error=kind != "empty", detail={"kind": kind})


def old_versions(path: str) -> Expected:
    """Records headed WARC/0.17 and WARC/0.18 (pre-ISO drafts, as old Heritrix wrote), then WARC/1.0 and 1.1."""
    versions = ["WARC/0.17", "WARC/0.18", "WARC/0.17", "WARC/1.0", "WARC/1.1"]
    pages = {f"https://old.example/{i}": page(i) for i in range(len(versions))}
    with open(path, "wb") as f:
        for (url, body), v in zip(pages.items(), versions):
            f.write(gzip_member(raw_response(url, http_block(body), version=v)))
    return Expected(path, len(versions), len(versions), pages=pages, detail={"versions": versions})


def no_status_line(path: str) -> Expected:
    """Response blocks with HTTP headers but no status line, with no HTTP head at all, and with bare-LF headers."""
    cases = {
        "https://nostatus.example/headers-only": b"Content-Type: text/html; charset=utf-8\r\n\r\n" + page(1),
        "https://nostatus.example/raw-html": page(2),
        "https://nostatus.example/bare-lf": b"HTTP/1.0 200 OK\nContent-Type: text/html\n\n" + page(3),
        "https://nostatus.example/no-reason": b"HTTP/1.1 200\r\nContent-Type: text/html\r\n\r\n" + page(4),
    }
    with open(path, "wb") as f:
        for url, blk in cases.items():
            f.write(gzip_member(raw_response(url, blk)))
    pages = {u: page(i) for i, u in enumerate(cases, 1)}
    return Expected(path, len(cases), len(cases), pages=pages, detail={"blocks": cases})


def _chunk(data: bytes, sizes: list[int], ext: bool = False) -> bytes:
    out, pos, k = bytearray(), 0, 0
    while pos < len(data):
        n = sizes[k % len(sizes)]
        piece = data[pos:pos + n]
        out += (b"%X;name=v\r\n" if ext and k == 1 else b"%x\r\n") % len(piece) + piece + b"\r\n"
        pos, k = pos + n, k + 1
    return bytes(out + b"0\r\n\r\n")


def encodings(path: str) -> Expected:
    """Chunked transfer-encoding, gzip/x-gzip/deflate (zlib and raw)/brotli content-encoding, both at once, and a
    page that claims gzip but is plain."""
    pages: dict[str, bytes] = {}
    blocks: dict[str, bytes] = {}

    def add(name: str, stored: bytes, headers: list[tuple[str, str]], n: int) -> None:
        url = f"https://enc.example/{name}"
        pages[url] = page(n)
        blocks[url] = http_block(stored, headers)

    def raw_deflate(b: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(b) + c.flush()

    add("chunked", _chunk(page(1), [100, 7, 300]), [("Transfer-Encoding", "chunked")], 1)
    add("chunked-ext", _chunk(page(2), [64], ext=True), [("Transfer-Encoding", "chunked")], 2)
    add("gzip", _gzip.compress(page(3), mtime=0), [("Content-Encoding", "gzip")], 3)
    add("x-gzip", _gzip.compress(page(4), mtime=0), [("Content-Encoding", "x-gzip")], 4)
    add("deflate", zlib.compress(page(5)), [("Content-Encoding", "deflate")], 5)
    add("deflate-raw", raw_deflate(page(6)), [("Content-Encoding", "deflate")], 6)
    add("br", brotli.compress(page(7)), [("Content-Encoding", "br")], 7)
    add("chunked-gzip", _chunk(_gzip.compress(page(8), mtime=0), [50, 200]),
        [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], 8)
    add("gzip-lie", page(9), [("Content-Encoding", "gzip")], 9)
    with open(path, "wb") as f:
        for url, blk in blocks.items():
            f.write(gzip_member(raw_response(url, blk)))
    return Expected(path, len(pages), len(pages), pages=pages, detail={"stored": blocks})


CHARSET_TEXTS = {
    "de": "Grüße aus Köln – die Straße am Fluss ist schön, und der Bäcker öffnet um sechs Uhr.",
    "fr": "L’été dernier, nous avons visité la côte : une belle leçon de cœur et de patience… 12 €.",
    "ru": "Мы гуляли по старому парку и разговаривали о книгах и погоде.",
    "ja": "昨日は友人と駅の近くの古い喫茶店で本について話しました。",
}


def charsets(path: str) -> Expected:
    """Pages whose declared charset is wrong, missing, unknown or contradicted; ``texts`` holds the real text."""
    def html(text: str, meta: str | None = None) -> str:
        m = f'<meta charset="{meta}">' if meta else ""
        return f"<!DOCTYPE html><html><head>{m}<title>t</title></head><body><p>{text}</p></body></html>"

    T = CHARSET_TEXTS
    cases = [  # name, header content type, body bytes, real text, real encoding
        ("utf8-declared-latin1", "text/html; charset=iso-8859-1", html(T["de"]).encode("utf-8"), T["de"], "utf-8"),
        ("cp1252-declared-utf8", "text/html; charset=utf-8", html(T["fr"]).encode("cp1252"), T["fr"], "cp1252"),
        ("sjis-declared-utf8", "text/html; charset=utf-8", html(T["ja"]).encode("shift_jis"), T["ja"], "shift_jis"),
        ("utf8-no-charset", "text/html", html(T["ru"]).encode("utf-8"), T["ru"], "utf-8"),
        ("cp1252-no-charset", "text/html", html(T["fr"]).encode("cp1252"), T["fr"], "cp1252"),
        ("cp1251-header-utf8-meta-cp1251", "text/html; charset=utf-8", html(T["ru"], "windows-1251").encode("cp1251"),
         T["ru"], "cp1251"),
        ("unknown-label", "text/html; charset=x-no-such-charset", html(T["de"]).encode("utf-8"), T["de"], "utf-8"),
        ("utf16-bom-no-charset", "text/html", html(T["de"]).encode("utf-16"), T["de"], "utf-16"),
        ("eucjp-meta-only", "text/html", html(T["ja"], "EUC-JP").encode("euc_jp"), T["ja"], "euc_jp"),
    ]
    records, pages, texts, detail = [], {}, {}, {}
    for name, ctype, body, text, enc in cases:
        url = f"https://charset.example/{name}"
        records.append(response_record(url, body, content_type=ctype))
        pages[url], texts[url], detail[url] = body, text, {"declared": ctype, "encoding": enc}
    write_warc(path, records)
    return Expected(path, len(cases), len(cases), pages=pages, texts=texts, detail=detail)


def nul_and_surrogates(path: str) -> Expected:
    """NUL bytes in a page, lone surrogates as raw UTF-8-style bytes and as character references, and in the URL."""
    cases = {
        "https://nul.example/nul-in-text": b"<html><body><p>Hello\x00 world\x00\x00, a page with NUL bytes.</p></body></html>",
        "https://nul.example/nul-in-tag": b"<html><bo\x00dy><p>Tag with NUL</p></body></html>",
        "https://nul.example/surrogate-bytes": b"<html><body><p>Lone surrogate \xed\xa0\x80 and \xed\xbf\xbf here.</p></body></html>",
        "https://nul.example/surrogate-ref": b"<html><body><p>Char refs &#xD800; &#55296; &#xDFFF; and &#0; here.</p></body></html>",
        "https://nul.example/surrogate-%ED%A0%80-url": b"<html><body><p>The URL has an encoded lone surrogate.</p></body></html>",
        "https://nul.example/pair-split": "<html><body><p>Emoji \U0001F600 ok</p></body></html>".encode("utf-16-le"),
    }
    write_warc(path, [response_record(u, b) for u, b in cases.items()])
    return Expected(path, len(cases), len(cases), pages=dict(cases))


def zero_length(path: str) -> Expected:
    """Empty blocks: a response with no bytes at all, headers but no body, a 204, empty warcinfo/metadata, then a normal page."""
    url0 = "https://zero.example/"
    parts = [
        raw_record([("WARC-Type", "warcinfo"), ("WARC-Date", DATE), ("WARC-Record-ID", record_id("zero", "info"))], b""),
        raw_response(url0 + "empty-block", b""),
        raw_response(url0 + "empty-body", http_block(b"")),
        raw_response(url0 + "no-content", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        raw_record([("WARC-Type", "metadata"), ("WARC-Date", DATE), ("WARC-Record-ID", record_id("zero", "meta")),
                    ("WARC-Target-URI", url0 + "empty-body"), ("Content-Type", "application/warc-fields")], b""),
        raw_response(url0 + "normal", http_block(page(1))),
    ]
    with open(path, "wb") as f:
        f.write(b"".join(gzip_member(p) for p in parts))
    return Expected(path, 6, 4, pages={url0 + "empty-body": b"", url0 + "no-content": b"", url0 + "normal": page(1)},
                    detail={"empty_block_url": url0 + "empty-block"})


_SENTENCES = ["The morning market opened late because of the rain.", "Volunteers repaired the old footbridge in two days.",
              "Our club meets on Thursdays in the library hall.", "Nobody expected the small garden to feed so many families.",
              "The route follows the river for about six miles.", "Children planted forty trees along the school fence.",
              "Prices at the bakery have not changed in three years.", "The last train leaves the valley just after nine."]


def _prose(rng: random.Random, n_bytes: int, sep: str) -> str:
    out, size = [], 0
    while size < n_bytes:
        s = rng.choice(_SENTENCES)
        out.append(s)
        size += len(s) + len(sep)
    return sep.join(out)


def big_page(path: str, size: int = 5_000_000) -> Expected:
    """One page of about ``size`` bytes of paragraphs (plus a small page after it)."""
    rng = random.Random(size)
    paras, total = [], 0
    while total < size:
        p = "<p>" + _prose(rng, 600, " ") + "</p>\n"
        paras.append(p)
        total += len(p)
    body = ("<!DOCTYPE html><html><head><title>Big</title></head><body>\n" + "".join(paras) + "</body></html>").encode()
    write_warc(path, [response_record("https://big.example/page", body),
                      response_record("https://big.example/after", page(1))])
    return Expected(path, 2, 2, pages={"https://big.example/after": page(1)},
                    detail={"url": "https://big.example/page", "size": len(body),
                            "sha1": hashlib.sha1(body).hexdigest()})


def deep_html(path: str, depth: int = 10_000, closed: bool = True) -> Expected:
    """A page with ``depth`` nested <div>s (closed or left open) around one paragraph."""
    inner = "<p>Deep inside the nested markup there is one short sentence.</p>"
    body = ("<!DOCTYPE html><html><head><title>Deep</title></head><body>" + "<div>" * depth + inner
            + ("</div>" * depth if closed else "") + "</body></html>").encode()
    write_warc(path, [response_record("https://deep.example/page", body),
                      response_record("https://deep.example/after", page(1))])
    return Expected(path, 2, 2, pages={"https://deep.example/page": body, "https://deep.example/after": page(1)},
                    detail={"depth": depth, "closed": closed})


def one_line_page(path: str, size: int = 1_000_000) -> Expected:
    """A page of about ``size`` bytes with no newline at all."""
    text = _prose(random.Random(size), size, " ")
    body = f"<!DOCTYPE html><html><head><title>One line</title></head><body><p>{text}</p></body></html>".encode()
    assert b"\n" not in body
    write_warc(path, [response_record("https://oneline.example/page", body)])
    return Expected(path, 1, 1, pages={"https://oneline.example/page": body}, detail={"size": len(body)})


def gzip_bomb(size: int, block: int = 1 << 20) -> bytes:
    """A gzip stream that inflates to ``size`` zero bytes, built without ever holding ``size`` bytes.

    Deflate output after a full flush does not depend on earlier input, so one compressed 1 MiB block
    is repeated; the CRC is accumulated over the same zero block.
    """
    zero = bytes(block)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    unit = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH) == unit
    n, rem = divmod(size, block)
    tail = c.compress(bytes(rem)) + c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(rem), crc)
    body = (first + unit * (n - 1)) if n else b""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + tail + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def decompression_bomb(path: str, size: int = 1 << 30) -> Expected:
    """A text/html response with Content-Encoding: gzip whose payload inflates to ``size`` bytes."""
    bomb = gzip_bomb(size)
    write_warc(path, [response_record("https://bomb.example/page", bomb, headers=[("Content-Encoding", "gzip")]),
                      response_record("https://bomb.example/after", page(1))])
    return Expected(path, 2, 2, pages={"https://bomb.example/after": page(1)},
                    detail={"url": "https://bomb.example/page", "compressed": len(bomb), "inflated": size})


def binary_as_html(path: str) -> Expected:
    """Binary payloads labelled text/html: random bytes, a PNG, a PDF and a gzip body without Content-Encoding."""
    rng = random.Random(3)
    cases = {
        "https://bin.example/random": rng.randbytes(4000),
        "https://bin.example/png": b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000),
        "https://bin.example/pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(2000) + b"\n%%EOF\n",
        "https://bin.example/double-gzip": _gzip.compress(page(5), mtime=0),
    }
    write_warc(path, [response_record(u, b) for u, b in cases.items()]
               + [response_record("https://bin.example/after", page(1))])
    return Expected(path, len(cases) + 1, len(cases) + 1, pages={**cases, "https://bin.example/after": page(1)},
                    detail={"binary_urls": list(cases)})
