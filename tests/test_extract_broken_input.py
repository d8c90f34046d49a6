"""Broken and hostile WARC input through the record loop: every record ends counted, nothing crashes."""
import collections

import pytest

from tests import warcgen
from udfs.extract import ExtractSettings, process_warc


class Collect:
    """A plain sink that keeps what the record loop hands it."""

    def __init__(self):
        self.kept, self.dropped = [], []

    def keep(self, row):
        self.kept.append(row)

    def drop(self, reason, doc_id, url=None, details=None, text=None):
        self.dropped.append((reason, url, details))

    def fail(self, error):
        raise AssertionError("process_warc reports errors in its stats")

    def reasons(self):
        return collections.Counter(r for r, _, _ in self.dropped)

    def by_url(self):
        return {r["url"]: r for r in self.kept}


def run(path, **settings):
    sink = Collect()
    with open(path, "rb") as f:
        stats = process_warc(f, str(path), ExtractSettings(**settings), sink)
    # every response read is kept or dropped once; the other records are counted by type only
    assert stats["records_by_type"].get("response", 0) == len(sink.kept) + len(sink.dropped)
    assert stats["records"] == sum(stats["records_by_type"].values())
    return sink, stats


def test_content_encodings_decoded(tmp_path):
    exp = warcgen.encodings(str(tmp_path / "enc.warc.gz"))
    sink, stats = run(tmp_path / "enc.warc.gz")
    kept = sink.by_url()
    assert "error" not in stats
    for name in ("chunked", "chunked-ext", "gzip", "deflate", "br", "chunked-gzip", "gzip-lie"):
        assert f"https://enc.example/{name}" in kept, (name, sink.dropped)
    assert stats["records"] == exp.records


def test_wrong_and_missing_charsets(tmp_path):
    exp = warcgen.charsets(str(tmp_path / "cs.warc.gz"))
    sink, _ = run(tmp_path / "cs.warc.gz")
    kept = sink.by_url()
    assert set(kept) == set(exp.texts)
    for url, text in exp.texts.items():
        assert text in kept[url]["text"], (url, kept[url]["charset"], kept[url]["text"][:80])


def test_truncated_gzip_keeps_what_was_read_and_reports(tmp_path):
    exp = warcgen.truncated_gzip(str(tmp_path / "t.warc.gz"))
    sink, stats = run(tmp_path / "t.warc.gz")
    assert "error" in stats
    assert len(sink.kept) >= exp.records - 1 >= 1


@pytest.mark.parametrize("kind", ["html", "gzip_text", "random", "empty"])
def test_not_a_warc_is_an_error_not_records(tmp_path, kind):
    exp = warcgen.not_a_warc(str(tmp_path / "x.warc.gz"), kind)
    sink, stats = run(tmp_path / "x.warc.gz")
    assert sink.kept == []
    if kind != "empty":
        assert "error" in stats and stats["records"] == 0
    assert exp.responses == 0


def test_content_length_lies(tmp_path):
    for too in ("long", "short"):
        exp = warcgen.content_length_lie(str(tmp_path / f"{too}.warc.gz"), too=too)
        sink, stats = run(tmp_path / f"{too}.warc.gz")
        assert len(sink.kept) >= 2  # records before the lie survive
        assert "error" in stats or len(sink.kept) >= exp.records - 1


def test_old_warc_versions_and_missing_status_lines(tmp_path):
    exp = warcgen.old_versions(str(tmp_path / "old.warc.gz"))
    sink, stats = run(tmp_path / "old.warc.gz")
    assert len(sink.kept) == exp.responses and "error" not in stats
    exp = warcgen.no_status_line(str(tmp_path / "ns.warc.gz"))
    sink, stats = run(tmp_path / "ns.warc.gz")
    assert stats["records"] == exp.records


def test_nul_bytes_surrogates_zero_length_and_binary(tmp_path):
    warcgen.nul_and_surrogates(str(tmp_path / "nul.warc.gz"))
    sink, _ = run(tmp_path / "nul.warc.gz")
    for row in sink.kept:
        assert "\x00" not in row["text"]
        row["text"].encode("utf-8")  # storable: no lone surrogates
    exp = warcgen.zero_length(str(tmp_path / "z.warc.gz"))
    sink, _ = run(tmp_path / "z.warc.gz")
    assert list(sink.by_url()) == ["https://zero.example/normal"]
    exp = warcgen.binary_as_html(str(tmp_path / "b.warc.gz"))
    sink, _ = run(tmp_path / "b.warc.gz")
    assert list(sink.by_url()) == ["https://bin.example/after"]
    assert sink.reasons()["binary_payload"] == len(exp.detail["binary_urls"])


def test_decompression_bomb_stops_at_the_limit(tmp_path):
    import resource
    exp = warcgen.decompression_bomb(str(tmp_path / "bomb.warc.gz"), size=300_000_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sink, _ = run(tmp_path / "bomb.warc.gz", max_record_bytes=5_000_000)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [r for r, u, _ in sink.dropped if u == exp.detail["url"]] == ["too_large"]
    assert list(sink.by_url()) == ["https://bomb.example/after"]
    assert grown_mb < 100  # never inflated past the limit


def test_huge_pages_deep_nesting_and_timeout(tmp_path):
    warcgen.one_line_page(str(tmp_path / "line.warc.gz"), size=10_000_000)
    sink, _ = run(tmp_path / "line.warc.gz", timeout_s=60, max_record_bytes=20_000_000)
    # trafilatura refuses documents past its own size limit; resiliparse's second opinion reads it whole (~0.1 s,
    # ~50 MB for 10 MB of text): the record limit bounds it
    assert not sink.dropped and 9_900_000 < sink.kept[0]["text_chars"] <= 10_000_100
    warcgen.big_page(str(tmp_path / "big.warc.gz"), size=3_000_000)
    sink, _ = run(tmp_path / "big.warc.gz", timeout_s=0.1)
    assert sink.reasons()["extract_timeout"] == 1  # the per-page limit cuts extraction short
    sink, _ = run(tmp_path / "line.warc.gz")  # default 10 MB limit: skipped before reading it whole
    assert sink.reasons() == {"too_large": 1}
    warcgen.deep_html(str(tmp_path / "deep.warc.gz"), depth=100_000)
    sink, _ = run(tmp_path / "deep.warc.gz")
    assert len(sink.kept) + len(sink.dropped) == 2


def _outcome(path):
    sink, stats = run(path)
    stats = {k: v for k, v in stats.items() if k not in ("extract_seconds", "prescreen_seconds")}
    if "error" in stats:  # the inflate library's own words in brackets differ ("Incorrect checksum found")
        stats["error"] = stats["error"].split(" (")[0]
    return [sorted(r.items()) for r in sink.kept], sink.dropped, stats


def test_isal_and_zlib_inflate_read_every_file_alike(tmp_path, shared_data):
    """ISA-L's inflate (udfs.extract._use_decompressors, when isal installs) against zlib's: the same rows, drops,
    record counts and errors on the shared WARCs and on damaged, lying and encoded generated ones."""
    from warcio.bufferedreaders import BufferedReader, gzip_decompressor
    pytest.importorskip("isal")
    files = sorted(str(p) for p in (shared_data / "warc").glob("*.warc.gz"))
    for name, make in (("enc", warcgen.encodings), ("trunc", warcgen.truncated_gzip), ("cs", warcgen.charsets),
                       ("lie", warcgen.content_length_lie), ("bomb", lambda p: warcgen.decompression_bomb(p, 50_000_000))):
        make(str(tmp_path / f"{name}.warc.gz"))
        files.append(str(tmp_path / f"{name}.warc.gz"))
    isal_out = [_outcome(f) for f in files]
    assert BufferedReader.DECOMPRESSORS["gzip"] is not gzip_decompressor     # process_warc put ISA-L's in
    import udfs.extract as ux
    saved = ux._use_decompressors
    ux._use_decompressors = lambda: BufferedReader.DECOMPRESSORS.update(gzip=gzip_decompressor)
    try:
        zlib_out = [_outcome(f) for f in files]
    finally:
        ux._use_decompressors = saved
    for f, a, b in zip(files, isal_out, zlib_out):
        assert a == b, f
    assert sum(len(k) for k, _, _ in isal_out) > 300 and any("error" in s for _, _, s in isal_out)
