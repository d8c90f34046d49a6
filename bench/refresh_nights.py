"""Simulated refresh nights: does a night's cost stay flat while the history grows?

    python -m bench.refresh_nights [--nights 30] [--docs 2000] [--buckets 4] [--root DIR] [--file-rows 20000]
                                   [--row-group-rows 256] [--level0 4] [--history-nights 0] [--dup 0.1]

Each night goes through the library as ``mdr refresh`` does, without WARC extraction or the stages:
1. lookup: the night's keys (``--docs`` documents: a URL key, a text-hash key and 14 band keys each, 16-byte or
   64-bit random; a ``--dup`` share are keys of earlier nights) in the cross-release index, bucket by bucket
   (``prior_index.lookup_bucket``, what each Spark task of ``prior_matches`` runs);
2. index: the night's keys written as level-0 files (``prior_build._write_group``), then ``prior_build.compact``
   in this process, the catalog written, files merged away deleted;
3. ledger: the night's WARC files listed, taken and finished, the ledger loaded lazily and saved
   (``pipeline.refresh.ledger``; a new CC-NEWS month every 10 nights).
``--history-nights`` nights are indexed first without being measured (a longer history to start from).
Printed per night: seconds, index files / row groups / rows / bytes the lookup read, rows the compaction merged
and the most one merge held, the index's size, and the peak RSS of this process during the night (sampled every
10 ms, ``bench.proctree.mem_kb``); then the averages of the first and last 5 nights and their ratio. For contrast,
"index rows" is what a lookup reading whole buckets (before) would read.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa

from bench.proctree import mem_kb
from pipeline.core.prior_index import KINDS, ReadStats, file_schema, lookup_bucket
from pipeline.core.storage import Storage, join
from pipeline.refresh import prior_build
from pipeline.refresh.ledger import Ledger
from pipeline.refresh.prior_build import _write_group, compact, entry
from udfs.prior_keys import long_buckets

BANDS = 14


class PeakRss:
    """The largest RSS of this process since ``reset``, sampled in a thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self.peak, self.interval, self._stop = 0, interval, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, mem_kb(os.getpid())[0])
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = mem_kb(os.getpid())[0]

    def stop(self) -> None:
        self._stop.set()


def night_keys(rng: np.random.Generator, docs: int, pool: dict, dup: float, night: int) -> dict:
    """kind -> (keys, ids): fresh random keys, a ``dup`` share of documents reusing keys from ``pool``."""
    ids = np.array([f"n{night:03d}-{i}" for i in range(docs)], dtype=object)
    n_dup = int(docs * dup) if pool["url"] is not None else 0
    out = {}
    for kind in KINDS:
        per = BANDS if kind == "band" else 1
        if kind == "band":
            keys = rng.integers(-2**63, 2**63 - 1, docs * per, dtype=np.int64)
        else:
            keys = np.frombuffer(rng.bytes(16 * docs), dtype="S16").copy()
        if n_dup:
            old = pool[kind]
            pick = rng.integers(0, len(old) // per, n_dup)
            idx = (pick[:, None] * per + np.arange(per)).ravel()
            keys[:n_dup * per] = old[idx]
        out[kind] = (keys, np.repeat(ids, per))
    return out


def bucket_of(kind: str, keys: np.ndarray, buckets: int) -> np.ndarray:
    if kind == "band":
        return long_buckets(keys, buckets)
    return (np.frombuffer(keys.tobytes(), dtype=">u4").reshape(-1, 4)[:, 0] % buckets).astype(np.int32)


def as_array(kind: str, keys: np.ndarray) -> pa.Array:
    return pa.array(keys, pa.int64()) if kind == "band" else pa.array(list(keys), pa.binary())


def run_night(store: Storage, root: str, files: dict, keys: dict, night: int, buckets: int, level0: int,
              file_rows: int, measure_lookup: bool = True) -> dict:
    release = f"n{night:03d}"
    stats, found = ReadStats(), 0
    t0 = time.time()
    by_bucket = {}
    for kind, (k, ids) in keys.items():
        b = bucket_of(kind, k, buckets)
        by_bucket[kind] = [(bk, k[b == bk], ids[b == bk]) for bk in range(buckets)]
        if measure_lookup:
            for bk, kk, _ in by_bucket[kind]:
                t, st = lookup_bucket(store, root, files[kind].get(str(bk), []), kind, as_array(kind, kk))
                stats.add(st)
                found += t.num_rows
    t_lookup = time.time() - t0
    for kind in KINDS:
        for bk, kk, ids in by_bucket[kind]:
            if len(kk):
                t = pa.table({"key": as_array(kind, kk), "id": pa.array(list(ids), pa.string()),
                              "release": pa.array([release] * len(kk), pa.string())}, schema=file_schema(kind))
                files[kind].setdefault(str(bk), []).append(entry(_write_group(store, root, release, release, kind,
                                                                              bk, [t])))
    replaced, comp = compact(None, store, files, root, release, release, level0, file_rows)
    store.write_text(join(root, "_catalogs", f"{release}.json"), json.dumps({"files": files}))
    for p in replaced:
        store.delete(join(root, p))
    live = [e for k in KINDS for fs in files[k].values() for e in fs]
    sizes = store.file_sizes(root)
    return {"lookup_s": t_lookup, "found": found, "read": stats, "compaction": comp,
            "index_rows": sum(e["rows"] for e in live), "index_files": len(live),
            "index_bytes": sum(sizes.get(join(root, e["path"]), 0) for e in live)}


def ledger_night(store: Storage, uri: str, night: int, per_night: int = 50) -> None:
    source = f"CC-NEWS/2099/{night // 10 + 1:02d}"
    led = Ledger.load(store, uri, lazy=True)
    led.add_listed([(source, f"crawl-data/{source}/n{night:03d}-{i:03d}.warc.gz") for i in range(per_night)])
    batch = led.select(per_night)
    led.start(batch, f"n{night:03d}")
    led.save(store)
    led.finish(f"n{night:03d}", f"n{night:03d}", {e.path: {"error": None, "documents": 10} for e in batch}, 3)
    led.save(store)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--buckets", type=int, default=4)
    ap.add_argument("--root", default=None)
    ap.add_argument("--file-rows", type=int, default=20_000)
    ap.add_argument("--row-group-rows", type=int, default=256)
    ap.add_argument("--level0", type=int, default=4)
    ap.add_argument("--history-nights", type=int, default=0)
    ap.add_argument("--history-docs", type=int, default=None, help="documents per history night (--docs)")
    ap.add_argument("--dup", type=float, default=0.1)
    a = ap.parse_args(argv)
    prior_build.ROW_GROUP_ROWS = a.row_group_rows
    root = a.root or tempfile.mkdtemp(prefix="refresh-nights-")
    store, index = Storage(), join(root, "index")
    files: dict = {k: {} for k in KINDS}
    rng = np.random.default_rng(0)
    pool: dict = {k: None for k in KINDS}
    for h in range(a.history_nights):
        keys = night_keys(rng, a.history_docs or a.docs, pool, 0.0, -h - 1)
        run_night(store, index, files, keys, 900 + h, a.buckets, a.level0, a.file_rows, measure_lookup=False)
        pool = {k: v[0] for k, v in keys.items()}
    peak = PeakRss()
    rows = []
    print(f"root {root}: {a.nights} nights of {a.docs} documents ({a.docs * (BANDS + 2):,} keys), {a.buckets} "
          f"buckets, files of at most {a.file_rows:,} rows, row groups of {a.row_group_rows}, "
          f"{a.history_nights} nights of history first")
    print(f"{'night':>5} {'s':>6} {'files':>6} {'rgroups':>7} {'rows read':>10} {'bytes read':>11} {'found':>6} "
          f"{'merged':>8} {'max merge':>9} {'index rows':>10} {'idx files':>9} {'index MB':>8} {'peak MiB':>8}")
    for night in range(1, a.nights + 1):
        keys = night_keys(rng, a.docs, pool, a.dup, night)
        peak.reset()
        t0 = time.time()
        r = run_night(store, index, files, keys, night, a.buckets, a.level0, a.file_rows)
        ledger_night(store, join(root, "ledger.parquet"), night)
        r["s"], r["peak_mib"] = time.time() - t0, peak.peak / 1024
        pool = {k: v[0] for k, v in keys.items()}
        rows.append(r)
        st, c = r["read"], r["compaction"]
        print(f"{night:>5} {r['s']:>6.2f} {st.files:>6} {st.row_groups:>7} {st.rows:>10,} {st.bytes:>11,} "
              f"{r['found']:>6} {c['rows_read']:>8,} {c['max_merge_rows']:>9,} {r['index_rows']:>10,} "
              f"{r['index_files']:>9} {r['index_bytes'] / 1e6:>8.1f} {r['peak_mib']:>8.0f}", flush=True)
    peak.stop()

    def avg(sel, f):
        return sum(f(r) for r in sel) / len(sel)
    first, last = rows[:5], rows[-5:]
    print("\naverages      first 5      last 5   last/first")
    for name, f in (("seconds", lambda r: r["s"]), ("files read", lambda r: r["read"].files),
                    ("rows read", lambda r: r["read"].rows), ("bytes read", lambda r: r["read"].bytes),
                    ("rows merged", lambda r: r["compaction"]["rows_read"]),
                    ("max merge", lambda r: r["compaction"]["max_merge_rows"]),
                    ("index rows", lambda r: r["index_rows"]), ("index bytes", lambda r: r["index_bytes"]),
                    ("peak MiB", lambda r: r["peak_mib"])):
        x, y = avg(first, f), avg(last, f)
        print(f"{name:<11} {x:>11,.1f} {y:>11,.1f} {y / x if x else float('nan'):>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
