"""The cross-release index's cost per night does not grow with the history (Spark local mode).

30 synthetic nights of band keys are added to a one-bucket index through the library (``_write_group`` for the
night's file, ``compact`` as the refresh runs it); a storage that counts the bytes it serves measures what
compaction reads each night and what a night's lookup (``prior_matches``) reads. Before the fix compaction merged
the whole bucket into one file in one process (night k read all k nights) and a lookup read every file of the
buckets its keys fell in (the whole index)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.core.prior_index import Catalog, file_schema, prior_matches
from pipeline.refresh import prior_build
from pipeline.refresh.prior_build import _write_group, compact
from tests.readcount import CountingStore

N = 300          # band keys a night adds
NIGHTS = 30
PROBES = 10      # keys a lookup night brings: half released earlier, half new
ROW_GROUP = 20
LOOKUP_NIGHTS = (6, 12, 18, 24, 30)


def _night_keys(night: int) -> np.ndarray:
    return np.random.default_rng(night).integers(-2**63, 2**63 - 1, N, dtype=np.int64)


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(prior_build, "FILE_ROWS", N, raising=False)        # compacted files: a night's rows at most
    mp.setattr(prior_build, "ROW_GROUP_ROWS", ROW_GROUP, raising=False)  # the granule a lookup reads
    tmp = tmp_path_factory.mktemp("scale")
    store, root = CountingStore(str(tmp / "reads.log")), str(tmp / "index")
    files: dict = {"band": {}}
    out = {"compaction": [], "lookup": {}, "night_file": 0, "index_bytes": {}, "history": [], "stats": {},
           "levels": {}}
    rng = np.random.default_rng(0)
    for night in range(1, NIGHTS + 1):
        release = f"r{night:02d}"
        keys = _night_keys(night)
        t = pa.table({"key": keys, "id": [f"{release}-{i}" for i in range(N)], "release": [release] * N},
                     schema=file_schema("band"))
        meta = _write_group(store, root, release, release, "band", 0, [t])
        files["band"].setdefault("0", []).append({k: v for k, v in meta.items() if k not in ("kind", "bucket")})
        out["night_file"] = max(out["night_file"], store.size(f"{root}/{meta['path']}"))
        before = store.read_total()
        compact(spark, store, files, root, release, release, 1)
        out["compaction"].append(store.read_total() - before)
        out["history"].append(sum(store.size(f"{root}/{f['path']}") for f in files["band"]["0"]))
        for f in files["band"]["0"]:
            assert store.exists(f"{root}/{f['path']}")
        if night in LOOKUP_NIGHTS:
            old = [(int(_night_keys(n)[i]), f"r{n:02d}-{i}") for n, i in
                   zip(rng.integers(1, night + 1, PROBES // 2), rng.integers(0, N, PROBES // 2))]
            probe = [k for k, _ in old] + [int(k) for k in rng.integers(-2**63, 2**63 - 1, PROBES // 2)]
            cat = Catalog(f"{root}/_catalogs/{release}.json", {"buckets": 1, "files": files})
            before = store.read_total()
            found = prior_matches(spark.createDataFrame([(k,) for k in probe], "key long"), cat, store, "band")
            got = {r["key"]: r["prior_id"] for r in found.collect()}
            assert got == dict(old)
            out["lookup"][night] = store.read_total() - before
            from pipeline.core.prior_index import lookup_bucket
            _, out["stats"][night] = lookup_bucket(store, root, files["band"]["0"], "band", probe)
            out["levels"][night] = {f.get("level", 0) for f in files["band"]["0"]} | {0}
            out["level0"] = sum(1 for f in files["band"]["0"] if f.get("level", 0) == 0)
            out["index_bytes"][night] = sum(store.size(f"{root}/{f['path']}") for f in files["band"]["0"])
    mp.undo()
    return out


def test_compaction_reads_a_bounded_amount_each_night(nights):
    """Before: every night merged the bucket's whole history into one file (night k read all k nights)."""
    per_night = [b / h for b, h in zip(nights["compaction"], nights["history"])]
    print("compaction reads per night / index size:", [round(x, 2) for x in per_night])
    assert max(per_night[19:]) <= 0.7                     # before: 1.0 every night
    assert sum(per_night[-10:]) / 10 <= 0.35              # falls as the history grows (log levels)


def test_a_nights_lookup_reads_what_its_keys_need_not_the_whole_index(nights):
    """Before: a lookup read every file of the buckets its keys fell in, the whole index here."""
    lookup, index = nights["lookup"], nights["index_bytes"]
    print("lookup bytes by night:", lookup, "index bytes:", index)
    assert index[30] >= 4 * index[6]                                   # the history grew 5 times,
    assert lookup[30] / lookup[6] <= 0.75 * index[30] / index[6]        # what a same-size night reads less
    assert all(lookup[n] <= index[n] / 3 for n in (18, 24, 30))
    for n, st in nights["stats"].items():   # a key costs at most one row group per level-0 file and per level
        assert st.row_groups <= PROBES * (len(nights["levels"][n]) - 1 + PROBES)
        assert st.rows <= st.row_groups * ROW_GROUP


def test_one_merge_holds_a_bounded_number_of_rows_whatever_the_history(tmp_path):
    """60 nights through ``compact_bucket`` (in this process): no merge holds more than the level-0 files plus
    (FANOUT + 2) compacted files, each level's files never share a key, and every row is still there once."""
    from pipeline.refresh.prior_build import FANOUT, Compaction, compact_bucket, entry
    from pipeline.core.storage import Storage
    store, root, how = Storage(), str(tmp_path / "index"), Compaction(2, N, FANOUT, ROW_GROUP)
    files, biggest, merged = [], 0, []
    for night in range(1, 61):
        release = f"r{night:02d}"
        t = pa.table({"key": _night_keys(night), "id": [f"{release}-{i}" for i in range(N)],
                      "release": [release] * N}, schema=file_schema("band"))
        files.append(entry(_write_group(store, root, release, release, "band", 0, [t], row_group_rows=ROW_GROUP)))
        files, gone, stats = compact_bucket(store, root, release, release, "band", 0, files, how)
        biggest = max(biggest, stats["max_merge_rows"])
        merged.append(stats["rows_read"])
    assert biggest <= (how.level0_files + 1) * N + (FANOUT + 2) * N
    assert sum(merged[-20:]) <= 1.5 * sum(merged[-40:-20])   # nights 41-60 merge about what nights 21-40 did
    levels: dict[int, list] = {}
    for f in files:
        levels.setdefault(f["level"], []).append((f["min"], f["max"]))
    for lv, ranges in levels.items():
        ranges.sort()
        assert lv == 0 or all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))
    assert len(set(levels) - {0}) >= 3 and sum(f["rows"] for f in files) == 60 * N


def test_simulated_nights_read_the_same_from_the_index_night_after_night(tmp_path, monkeypatch):
    """bench.refresh_nights on 8 small nights over a history of 10 larger ones: what each night's lookup reads
    (files, row groups, bytes) does not grow with the night number, and is a small part of the index. (Nights as
    large as the history would read all of it: keys are hashes; the module docstring of prior_index says so.)"""
    import numpy as np

    from bench import refresh_nights as sim
    from pipeline.core.prior_index import KINDS
    from pipeline.core.storage import Storage
    monkeypatch.setattr(prior_build, "ROW_GROUP_ROWS", 64)
    store, root, files = Storage(), str(tmp_path / "index"), {k: {} for k in KINDS}
    rng, pool = np.random.default_rng(1), {k: None for k in KINDS}
    for h in range(10):
        keys = sim.night_keys(rng, 1000, pool, 0.0, -h - 1)
        sim.run_night(store, root, files, keys, 900 + h, 2, 4, 20_000, measure_lookup=False)
        pool = {k: v[0] for k, v in keys.items()}
    nights = []
    for night in range(1, 9):
        keys = sim.night_keys(rng, 10, pool, 0.2, night)
        nights.append(sim.run_night(store, root, files, keys, night, 2, 4, 20_000))
        assert nights[-1]["found"] >= 2 * 16     # the reused documents' keys were all found
    first, last = nights[:4], nights[4:]
    for what in ("files", "row_groups", "bytes"):
        a, b = (sum(getattr(r["read"], what) for r in x) for x in (first, last))
        assert b <= 1.25 * a, (what, a, b)
    assert all(r["read"].rows <= r["index_rows"] / 4 for r in nights)
    assert nights[-1]["index_rows"] > nights[0]["index_rows"]


def test_a_128_bit_band_index_sorts_ranges_and_looks_up_keys_bytewise(spark, tmp_path):
    """128-bit band keys (dedup_fuzzy.key_bits=128) are 16 bytes in the index, half of them with a first byte of
    0x80 or more: files are sorted, their catalog ranges (hex) and row-group statistics compared, unsigned byte
    by byte, so compaction keeps each level's ranges apart and a lookup finds every key it holds, in Spark and
    in ``lookup_bucket``, reading at most one row group per key and file whose range holds it."""
    from pipeline.refresh.prior_build import FANOUT, Compaction, compact_bucket, entry
    from pipeline.core.prior_index import key_from_json, lookup_bucket
    from pipeline.core.storage import Storage
    store, root, how = Storage(), str(tmp_path / "index"), Compaction(2, N, FANOUT, ROW_GROUP)
    rng, files, released = np.random.default_rng(7), [], {}
    for night in range(1, 16):
        release = f"r{night:02d}"
        keys = [rng.bytes(16) for _ in range(N)]
        released.update((k, f"{release}-{i}") for i, k in enumerate(keys))
        t = pa.table({"key": keys, "id": [f"{release}-{i}" for i in range(N)], "release": [release] * N},
                     schema=file_schema("band", 128))
        files.append(entry(_write_group(store, root, release, release, "band", 0, [t], row_group_rows=ROW_GROUP)))
        files, _, _ = compact_bucket(store, root, release, release, "band", 0, files, how, key_bits=128)
    assert sum(f["rows"] for f in files) == 15 * N and len({f["level"] for f in files} - {0}) >= 2
    assert all(len(f["min"]) == len(f["max"]) == 32 for f in files)   # 16 bytes, as hex
    assert min(f["min"] for f in files) < "80" <= max(f["max"] for f in files)   # the whole range, bytewise
    for lv in {f["level"] for f in files} - {0}:
        ranges = sorted((key_from_json(f["min"]), key_from_json(f["max"])) for f in files if f["level"] == lv)
        assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))
    high = [k for k in released if k[0] >= 0x80][:6]
    low = [k for k in released if k[0] < 0x80][:6]
    absent = [b"\xff" * 16, b"\x80" + b"\x00" * 15, b"\x7f" + b"\xff" * 15, rng.bytes(16)]
    probe = high + low + absent
    found, st = lookup_bucket(store, root, files, "band", probe, key_bits=128)
    assert dict(zip(found.column("key").to_pylist(), found.column("prior_id").to_pylist())) == {
        k: released[k] for k in high + low}
    assert st.row_groups <= len(probe) * len(files) and st.rows <= st.row_groups * ROW_GROUP
    assert st.row_groups < sum(-(-f["rows"] // ROW_GROUP) for f in files) / 4   # not the whole index
    cat = Catalog(f"{root}/_catalogs/r15.json",
                  {"buckets": 1, "files": {"band": {"0": files}}, "params": {"minhash": {"key_bits": 128}}})
    got = prior_matches(spark.createDataFrame([(k,) for k in probe], "key binary"), cat, store, "band").collect()
    assert {bytes(r["key"]): r["prior_id"] for r in got} == {k: released[k] for k in high + low}
