"""The synthetic sample WARC (pipeline.sample.generate) and the broken-WARC generators (tests/warcgen.py)."""
from __future__ import annotations

import base64
import codecs
import difflib
import gzip
import hashlib
import io
import re
import zlib
from collections import Counter

import brotli
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

import warcgen
from pipeline.sample.generate import main as sample_main
from pipeline.sample.generate import sample_bytes, write_sample_warc


# --------------------------------------------------------------------------- helpers

def read_all(path_or_bytes, content: bool = True) -> tuple[list[dict], Exception | None]:
    """Every record warcio yields before it stops, and the exception that stopped it (if any)."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    out, err = [], None
    try:
        for r in ArchiveIterator(io.BytesIO(data)):
            rec = {"format": r.format, "type": r.rec_type, "headers": r.rec_headers,
                   "url": r.rec_headers.get_header("WARC-Target-URI"), "http": r.http_headers}
            if content:
                rec["body"] = r.content_stream().read() if r.rec_type == "response" else r.raw_stream.read()
            out.append(rec)
    except Exception as e:  # noqa: BLE001 - the test asserts on which one
        err = e
    return out, err


def content_region(html_text: str) -> str:
    """The article body of a sample page (blog, news or forum template)."""
    m = re.search(r'<div class="(?:entry-content|article-body|post-body)"[^>]*>(.*?)</div>', html_text, re.S)
    assert m, "no article region"
    return re.sub(r"<[^>]+>", " ", m.group(1))


def decode_entity(block: bytes) -> bytes:
    """HTTP entity of a response block with transfer and content coding removed (reference decoder)."""
    head, _, body = block.partition(b"\r\n\r\n")
    headers = {k.strip().lower(): v.strip().lower() for k, _, v in
               (ln.partition(":") for ln in head.decode("latin-1").split("\r\n")[1:])}
    if headers.get("transfer-encoding") == "chunked":
        out, rest = bytearray(), body
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        body = bytes(out)
    ce = headers.get("content-encoding")
    if ce in ("gzip", "x-gzip"):
        try:
            return gzip.decompress(body)
        except OSError:
            return body  # declared gzip, stored plain
    if ce == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -15)
    if ce == "br":
        return brotli.decompress(body)
    return body


def raw_blocks(path: str) -> bytes:
    """The whole file decompressed (all gzip members), for looking at bytes warcio would interpret."""
    return gzip.decompress(open(path, "rb").read())


# --------------------------------------------------------------------------- the sample

@pytest.fixture(scope="module")
def sample():
    data, summary = sample_bytes(0)
    records, err = read_all(data)
    assert err is None
    return data, summary, records


def test_sample_is_deterministic(tmp_path):
    s1 = write_sample_warc(str(tmp_path / "a.warc.gz"), seed=3)
    s2 = write_sample_warc(str(tmp_path / "b" / "c.warc.gz"), seed=3)
    assert (tmp_path / "a.warc.gz").read_bytes() == (tmp_path / "b" / "c.warc.gz").read_bytes()
    assert s1 == s2
    assert sample_bytes(4)[0] != (tmp_path / "a.warc.gz").read_bytes()
    assert sample_bytes(4)[1]["kinds"] == s1["kinds"]  # the seed changes text, not the mix


def test_sample_cli(tmp_path, capsys):
    out = tmp_path / "s.warc.gz"
    assert sample_main([str(out), "--seed", "0"]) == 0
    assert out.read_bytes() == sample_bytes(0)[0]
    assert "captures" in capsys.readouterr().out


def test_sample_size_and_mix(sample):
    data, summary, _ = sample
    assert len(data) < 1_000_000
    assert 120 <= summary["captures"] <= 200
    kinds = summary["kinds"]
    for k in ["article", "exact_dup", "near_dup", "syndicated", "recrawl", "revisit", "spam_keywords", "spam_gambling",
              "spam_adult", "repeated_lines", "allcaps_lines", "social_counters", "short", "http_404", "redirect_301",
              "image_png", "text_plain", "pdf", "binary_html", "chunked", "gzip_encoded"]:
        assert kinds.get(k, 0) >= 1, k
    assert set(summary["languages"]) == {"en", "de", "fr", "es", "ja", "zh", "ru"}
    assert summary["languages"]["en"] > sum(v for k, v in summary["languages"].items() if k != "en")
    assert {"windows-1252", "iso-8859-1", "euc_jp", "shift_jis"} <= set(summary["charsets"])


def test_sample_summary_matches_file(sample):
    _, summary, records = sample
    assert dict(Counter(r["type"] for r in records)) == summary["records"]
    responses = [r for r in records if r["type"] == "response"]
    assert {str(k): v for k, v in Counter(int(r["http"].get_statuscode()) for r in responses).items()} == summary["status"]
    assert dict(Counter(r["headers"].get_header("WARC-Identified-Payload-Type") for r in responses)) \
        == summary["payload_types"]
    html_200 = [r for r in responses if r["http"].get_statuscode() == "200"
                and r["headers"].get_header("WARC-Identified-Payload-Type") == "text/html"]
    assert len(html_200) == summary["html_200"]
    # every capture is in the file, in the same order, with its id and date
    captured = [r for r in records if r["type"] in ("response", "revisit")]
    assert [(r["url"], r["headers"].get_header("WARC-Record-ID"), r["headers"].get_header("WARC-Date"))
            for r in captured] == [(p["url"], p["record_id"], p["date"]) for p in summary["pages"]]
    assert sum(summary["kinds"].values()) == summary["captures"] == len(captured)
    by_lang = Counter(p["lang"] for p in summary["pages"] if p["lang"] and p["kind"] != "revisit")
    assert dict(by_lang) == summary["languages"]


def test_sample_layout_is_common_crawl_like(sample):
    _, summary, records = sample
    assert records[0]["type"] == "warcinfo"
    assert records[0]["headers"].get_header("WARC-Filename") == summary["filename"]
    info_id = records[0]["headers"].get_header("WARC-Record-ID")
    ids = [r["headers"].get_header("WARC-Record-ID") for r in records]
    assert len(set(ids)) == len(ids)
    assert all(r["headers"].protocol == "WARC/1.0" for r in records)
    i = 1
    while i < len(records):
        req, resp = records[i], records[i + 1]
        assert req["type"] == "request" and resp["type"] in ("response", "revisit")
        assert req["url"] == resp["url"]
        assert resp["headers"].get_header("WARC-Concurrent-To") == req["headers"].get_header("WARC-Record-ID")
        assert resp["headers"].get_header("WARC-Warcinfo-ID") == info_id
        assert resp["headers"].get_header("WARC-Payload-Digest", "").startswith("sha1:")
        if resp["type"] == "revisit":
            i += 2
            continue
        assert resp["headers"].get_header("WARC-Identified-Payload-Type")
        assert resp["http"].get_header("Content-Type")
        meta = records[i + 2]
        assert meta["type"] == "metadata" and meta["url"] == resp["url"]
        assert meta["headers"].get_header("WARC-Concurrent-To") == resp["headers"].get_header("WARC-Record-ID")
        assert b"fetchTimeMs:" in meta["body"]
        i += 3
    dates = [p["date"] for p in summary["pages"]]
    assert dates == sorted(dates)


def test_sample_digests(sample):
    data, _, _ = sample
    n = 0
    for r in ArchiveIterator(io.BytesIO(data)):
        if r.rec_type == "response":
            payload = r.raw_stream.read()  # as stored: before transfer/content decoding
            digest = "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode()
            assert r.rec_headers.get_header("WARC-Payload-Digest") == digest
            n += 1
    assert n > 100


def test_sample_payloads_decode(sample):
    _, summary, records = sample
    pages = {(p["url"], p["date"]): p for p in summary["pages"]}
    for r in records:
        if r["type"] != "response":
            continue
        p = pages[(r["url"], r["headers"].get_header("WARC-Date"))]
        body = r["body"]
        if p["mime"] == "text/html" and p["kind"] != "binary_html":
            assert body.lstrip().lower().startswith(b"<!doctype html>"), p["kind"]
        if p["kind"] == "chunked":
            assert r["http"].get_header("Transfer-Encoding") == "chunked"
        if p["kind"] == "gzip_encoded":
            assert r["http"].get_header("Content-Encoding") == "gzip"
        if p["kind"] == "image_png":
            assert body.startswith(b"\x89PNG\r\n\x1a\n")
        if p["kind"] == "pdf":
            assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
        if p["kind"] == "binary_html":
            assert r["http"].get_header("Content-Type").startswith("text/html")
            with pytest.raises(UnicodeDecodeError):
                body.decode("utf-8")
        if p["kind"] == "redirect_301":
            assert r["http"].get_statuscode() == "301" and r["http"].get_header("Location").startswith("https://")


def test_sample_charsets_are_declared_correctly(sample):
    _, summary, records = sample
    pages = {(p["url"], p["date"]): p for p in summary["pages"]}
    script = {"ja": r"[\u3040-\u30ff]", "zh": r"[\u4e00-\u9fff]", "ru": r"[\u0400-\u04ff]", "de": "[äöüßÄÖÜ]",
              "fr": "[éèàçêû]", "es": "[ñáéíóú¿¡]"}
    seen = Counter()
    for r in records:
        if r["type"] != "response":
            continue
        p = pages[(r["url"], r["headers"].get_header("WARC-Date"))]
        if p["mime"] != "text/html" or p["kind"] == "binary_html" or not p["charset"]:
            continue
        text = r["body"].decode(p["charset"])          # strict: the page really is in its charset
        header = r["http"].get_header("Content-Type").lower()
        label = re.search(r'<meta[^>]*charset="?([\w-]+)', text)
        if p["declared"] in ("both", "header"):
            assert "charset=" in header
        if p["declared"] in ("both", "meta"):
            assert label, p["url"]
        if p["declared"] in ("meta", "none"):
            assert "charset=" not in header
        if p["charset"] not in ("utf-8", "ascii"):
            seen[p["charset"]] += 1
            declared = header.split("charset=")[1] if "charset=" in header else label.group(1)
            assert codecs.lookup(declared).name == codecs.lookup(p["charset"]).name
            if p["kind"] == "article":
                with pytest.raises(UnicodeDecodeError):
                    r["body"].decode("utf-8")
        if p["lang"] in script and p["kind"] == "article":
            assert re.search(script[p["lang"]], text), p["url"]
    assert seen["euc_jp"] >= 1 and seen["shift_jis"] >= 1 and seen["windows-1252"] >= 1


def test_sample_duplicates_and_recrawls(sample):
    _, summary, records = sample
    pages = {(p["url"], p["date"]): p for p in summary["pages"]}
    by_group: dict[str, list[tuple[dict, dict]]] = {}
    for r in records:
        if r["type"] in ("response", "revisit"):
            p = pages[(r["url"], r["headers"].get_header("WARC-Date"))]
            if p["group"]:
                by_group.setdefault(p["group"], []).append((p, r))
    assert set(by_group) == set(summary["groups"])
    for g, members in by_group.items():
        original = next(r for p, r in members if p["kind"] == "article")
        for p, r in members:
            if p["kind"] == "exact_dup" or (p["kind"] == "recrawl" and "utm_" in p["url"]):
                assert r["body"] == original["body"] and p["url"] != original["url"]
            elif p["kind"] == "revisit":
                assert r["headers"].get_header("WARC-Refers-To-Target-URI") == original["url"]
                assert r["headers"].get_header("WARC-Payload-Digest") == original["headers"].get_header("WARC-Payload-Digest")
            elif p["kind"] in ("recrawl", "syndicated"):
                assert r["body"] != original["body"]
                assert content_region(r["body"].decode()).split() == content_region(original["body"].decode()).split()
                if p["kind"] == "recrawl":
                    assert p["url"] == original["url"] and p["date"] > pages[(original["url"], original["headers"].get_header("WARC-Date"))]["date"]
            elif p["kind"] == "near_dup":
                a = content_region(original["body"].decode()).split()
                b = content_region(r["body"].decode()).split()
                ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
                changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
                assert 1 <= changed == p["changed_words"] <= 4, (g, ops)


def test_sample_spam_domains_are_made_up(sample):
    _, summary, _ = sample
    hosts = {p["url"].split("/")[2] for p in summary["pages"]}
    assert all(h.endswith(".example") for h in hosts)
    assert any("casino" in p["url"] for p in summary["pages"] if p["kind"] == "spam_gambling")


# --------------------------------------------------------------------------- well-formed builder

def test_write_pages_round_trip(tmp_path):
    exp = warcgen.write_pages(str(tmp_path / "p.warc.gz"), [(f"https://a.example/{i}", warcgen.page(i)) for i in range(3)])
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records == 3
    assert {r["url"]: r["body"] for r in records} == exp.pages
    assert records[0]["http"].get_header("Content-Type") == "text/html; charset=utf-8"
    rec = warcgen.response_record("https://a.example/x", b"nope", status=404, date="2020-02-02T00:00:00Z")
    assert rec.rec_headers.get_header("WARC-Date") == "2020-02-02T00:00:00Z"
    assert rec.http_headers.get_statuscode() == "404"


# --------------------------------------------------------------------------- broken cases

def test_truncated_gzip(tmp_path):
    exp = warcgen.truncated_gzip(str(tmp_path / "t.warc.gz"), n_before=3, n_after=2)
    records, err = read_all(exp.path)
    assert len(records) == exp.records == 3 and exp.error
    assert isinstance(err, ArchiveLoadFailed)
    data = open(exp.path, "rb").read()
    with pytest.raises((EOFError, OSError, zlib.error)):
        gzip.decompress(data)
    assert data[exp.detail["damaged_offset"]:].startswith(b"\x1f\x8b")
    assert data.count(b"\x1f\x8b\x08") >= exp.recoverable + 1


@pytest.mark.parametrize("too", ["long", "short"])
@pytest.mark.parametrize("compressed", [True, False])
def test_content_length_lie(tmp_path, too, compressed):
    exp = warcgen.content_length_lie(str(tmp_path / "cl.warc.gz"), too=too, gzip=compressed)
    data = open(exp.path, "rb").read()
    raw = gzip.decompress(data) if compressed else data
    m = re.search(rb"WARC-Target-URI: " + re.escape(exp.detail["lying_url"].encode()) + rb"\r\n.*?Content-Length: (\d+)\r\n\r\n",
                  raw, re.S)
    start = m.end()
    end = raw.index(b"\r\n\r\nWARC/1.0", start)
    declared, actual = int(m.group(1)), end - start
    assert declared - actual == (exp.detail["delta"] if too == "long" else -exp.detail["delta"])
    records, err = read_all(exp.path)
    assert len(records) == exp.records
    assert (err is not None) == exp.error
    for r in records:
        if r["url"] in exp.pages:
            assert r["body"] == exp.pages[r["url"]]


@pytest.mark.parametrize("kind", ["html", "gzip_text", "random", "empty"])
def test_not_a_warc(tmp_path, kind):
    exp = warcgen.not_a_warc(str(tmp_path / "x.warc.gz"), kind)
    records, err = read_all(exp.path)
    assert not [r for r in records if r["format"] == "warc"]
    assert exp.records == 0
    assert (err is not None) == exp.error
    if exp.error:
        assert isinstance(err, ArchiveLoadFailed)


def test_old_warc_versions(tmp_path):
    exp = warcgen.old_versions(str(tmp_path / "o.warc.gz"))
    raw = raw_blocks(exp.path)
    assert raw.count(b"WARC/0.17\r\n") == 2 and raw.count(b"WARC/0.18\r\n") == 1
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    assert [r["headers"].protocol for r in records] == exp.detail["versions"]
    assert {r["url"]: r["body"] for r in records} == exp.pages


def test_http_head_without_status_line(tmp_path):
    exp = warcgen.no_status_line(str(tmp_path / "n.warc.gz"))
    raw = raw_blocks(exp.path)
    for url, blk in exp.detail["blocks"].items():
        assert blk in raw
        assert blk.startswith(b"HTTP/") == url.endswith(("bare-lf", "no-reason"))
    assert b"\nContent-Type: text/html\n\n" in raw
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records


def test_transfer_and_content_encodings(tmp_path):
    exp = warcgen.encodings(str(tmp_path / "e.warc.gz"))
    raw = raw_blocks(exp.path)
    for url, blk in exp.detail["stored"].items():
        assert blk in raw
        assert decode_entity(blk) == exp.pages[url], url
        body = blk.partition(b"\r\n\r\n")[2]
        assert (body == exp.pages[url]) == url.endswith("gzip-lie")
    stored = exp.detail["stored"]
    assert b"Transfer-Encoding: chunked" in stored["https://enc.example/chunked-gzip"]
    assert b";name=v\r\n" in stored["https://enc.example/chunked-ext"]
    records, err = read_all(exp.path, content=False)
    assert err is None and len(records) == exp.records


def test_wrong_and_missing_charsets(tmp_path):
    exp = warcgen.charsets(str(tmp_path / "c.warc.gz"))
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    for r in records:
        d = exp.detail[r["url"]]
        assert r["body"] == exp.pages[r["url"]]
        assert exp.texts[r["url"]] in r["body"].decode(d["encoding"])
        assert r["http"].get_header("Content-Type") == d["declared"]
        m = re.search(r"charset=([\w-]+)", d["declared"])
        if m and m.group(1) != "x-no-such-charset":
            text = r["body"].decode(m.group(1), errors="replace")
            assert (exp.texts[r["url"]] in text) == (r["url"].endswith("utf8-no-charset"))


def test_nul_bytes_and_lone_surrogates(tmp_path):
    exp = warcgen.nul_and_surrogates(str(tmp_path / "s.warc.gz"))
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    bodies = {r["url"]: r["body"] for r in records}
    assert bodies == exp.pages
    assert b"\x00" in bodies["https://nul.example/nul-in-text"]
    with pytest.raises(UnicodeDecodeError):
        bodies["https://nul.example/surrogate-bytes"].decode("utf-8")
    assert "\ud800" in bodies["https://nul.example/surrogate-bytes"].decode("utf-8", "surrogatepass")
    assert b"&#xD800;" in bodies["https://nul.example/surrogate-ref"]


def test_zero_length_records(tmp_path):
    exp = warcgen.zero_length(str(tmp_path / "z.warc.gz"))
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    assert sum(r["type"] == "response" for r in records) == exp.responses
    assert sum(r["headers"].get_header("Content-Length") == "0" for r in records) == 3
    bodies = {r["url"]: r["body"] for r in records if r["type"] == "response"}
    assert bodies["https://zero.example/normal"] == exp.pages["https://zero.example/normal"]
    assert bodies[exp.detail["empty_block_url"]] == b""


def test_big_page(tmp_path):
    exp = warcgen.big_page(str(tmp_path / "b.warc.gz"), size=2_000_000)
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    big = next(r["body"] for r in records if r["url"] == exp.detail["url"])
    assert len(big) == exp.detail["size"] >= 2_000_000
    assert big.count(b"<p>") > 1000


def test_deep_html(tmp_path):
    exp = warcgen.deep_html(str(tmp_path / "d.warc.gz"), depth=5000)
    body = exp.pages["https://deep.example/page"]
    assert body.count(b"<div>") == body.count(b"</div>") == 5000
    open_only = warcgen.deep_html(str(tmp_path / "d2.warc.gz"), depth=300, closed=False)
    assert open_only.pages["https://deep.example/page"].count(b"</div>") == 0
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records


def test_one_line_page(tmp_path):
    exp = warcgen.one_line_page(str(tmp_path / "l.warc.gz"), size=300_000)
    records, err = read_all(exp.path)
    assert err is None and len(records) == 1
    body = records[0]["body"]
    assert b"\n" not in body and len(body) >= 300_000


@pytest.mark.parametrize("size", [0, 1000, 5_000_003])
def test_gzip_bomb_is_exact(size):
    assert gzip.decompress(warcgen.gzip_bomb(size, block=1 << 16)) == bytes(size)


def test_decompression_bomb(tmp_path):
    size = 64 << 20
    exp = warcgen.decompression_bomb(str(tmp_path / "bomb.warc.gz"), size=size)
    assert exp.detail["compressed"] < size // 500
    import os
    assert os.path.getsize(exp.path) < size // 500
    records, err = read_all(exp.path, content=False)
    assert err is None and len(records) == exp.records
    # the stored payload (before content decoding) is small; inflate it in bounded steps
    with open(exp.path, "rb") as f:
        for r in ArchiveIterator(f):
            if r.rec_headers.get_header("WARC-Target-URI") == exp.detail["url"]:
                assert r.http_headers.get_header("Content-Encoding") == "gzip"
                stored = r.raw_stream.read()
                break
    assert len(stored) == exp.detail["compressed"]
    d, total, buf = zlib.decompressobj(31), 0, stored
    while buf or not d.eof:
        out = d.decompress(buf, 1 << 20)
        assert out.count(0) == len(out)
        total += len(out)
        buf = d.unconsumed_tail
        if not out and not buf:
            break
    assert d.eof and total == exp.detail["inflated"] == size


def test_binary_labelled_html(tmp_path):
    exp = warcgen.binary_as_html(str(tmp_path / "bin.warc.gz"))
    records, err = read_all(exp.path)
    assert err is None and len(records) == exp.records
    for r in records:
        assert r["http"].get_header("Content-Type").startswith("text/html")
        assert r["body"] == exp.pages[r["url"]]
    bodies = {r["url"]: r["body"] for r in records}
    assert bodies["https://bin.example/png"].startswith(b"\x89PNG")
    assert bodies["https://bin.example/double-gzip"].startswith(b"\x1f\x8b")
    with pytest.raises(UnicodeDecodeError):
        bodies["https://bin.example/random"].decode("utf-8")
