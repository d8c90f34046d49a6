"""Damaged .warc.gz input is never read as a shorter, whole file: a gzip member that does not decompress and a file
cut inside a gzip member are reported as the file's error (the stage lists it in failed_inputs), not passed over
in silence. (warcio prints a zlib error and ends the file as if it were complete; the soak found it.)
The one case nothing can tell apart: a file cut exactly between two gzip members, which is a valid shorter WARC.
"""
from __future__ import annotations

import io
import random
import zlib

import pytest

from udfs.extract import ExtractSettings, process_warc


class Count:
    def __init__(self):
        self.n = 0

    def keep(self, row):
        self.n += 1

    def drop(self, *a, **k):
        self.n += 1

    def fail(self, error):
        raise AssertionError("process_warc reports errors in its stats")


def read(data: bytes) -> dict:
    sink = Count()
    stats = process_warc(io.BytesIO(data), "x.warc.gz", ExtractSettings(), sink)
    assert stats["records_by_type"].get("response", 0) == sink.n  # responses reach the sink, once each
    assert stats["records"] == sum(stats["records_by_type"].values())
    return stats


def members(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each gzip member."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        out.append((pos, end))
        pos = end
    return out


@pytest.fixture(scope="module")
def warc(tmp_path_factory) -> bytes:
    from pipeline.sample.generate import write_sample_warc
    p = tmp_path_factory.mktemp("corrupt") / "s.warc.gz"
    write_sample_warc(str(p), seed=300)
    return p.read_bytes()


def test_whole_file_reads_clean(warc):
    stats = read(warc)
    assert stats["records"] == len(members(warc)) == 432 and "error" not in stats


def test_bad_bytes_inside_a_member_are_the_files_error(warc):
    start, end = members(warc)[200]
    data = bytearray(warc)
    mid = (start + end) // 2
    data[mid:mid + 64] = bytes(64)  # deflate data or CRC no longer match
    stats = read(bytes(data))
    assert "error" in stats and stats["records"] <= 201, stats
    assert "gzip member does not decompress" in stats["error"] or "unreadable after" in stats["error"], stats["error"]


@pytest.mark.parametrize("where", ["mid-member", "in-trailer"])
def test_file_cut_inside_a_member_is_the_files_error(warc, where):
    start, end = members(warc)[300]
    cut = (start + end) // 2 if where == "mid-member" else end - 3  # the 8-byte CRC+size trailer
    stats = read(warc[:cut])
    assert "error" in stats and "truncated" in stats["error"], stats


def test_file_cut_between_members_reads_as_a_shorter_file(warc):
    """Documented limit: a WARC cut at a member boundary is a valid, shorter WARC (no format-level length)."""
    start, _ = members(warc)[300]
    stats = read(warc[:start])
    assert stats["records"] == 300 and "error" not in stats


def test_random_damage_is_never_silent(warc):
    rng = random.Random(11)
    bounds = {s for s, _ in members(warc)} | {len(warc)}
    silent = []
    for trial in range(30):
        data = bytearray(warc)
        if trial % 2:
            at = rng.randrange(len(data) // 4, 3 * len(data) // 4)
            data[at:at + 256] = bytes(rng.randrange(256) for _ in range(256))
        else:
            cut = rng.randrange(len(data) // 4, 3 * len(data) // 4)
            if cut in bounds:
                continue
            data = data[:cut]
        stats = read(bytes(data))
        if "error" not in stats:
            silent.append((trial, stats["records"]))
    assert silent == []
