"""Extend the cross-release indexes with a release's documents (``pipeline.core.prior_index`` describes them).

The keys are those a later night's dedup stages look up, computed from the text each stage looked up: URL and
text-hash keys from dedup_exact's input (before its substring cuts), band keys from dedup_fuzzy's input, both
with the stages' own key functions (``dedup_exact.exact_keys``, ``dedup_fuzzy.text_band_keys``) and kept only
for the documents the release holds. ``key_sources`` finds those inputs through the manifests.

One Spark job: a task per part of those inputs computes its documents' keys; rows of documents the release
does not hold are dropped (a semi-join on the released dataset's ids), the rest shuffled by (index, bucket),
sorted by key, and each task writes one file per (index, bucket) under ``<index root>/<release>/g<N>/`` (N: the
lease generation of the night, so an older holder of the lease never writes the same files). The new catalog
(``_catalogs/<release>-g<N>.json``) lists the earlier catalog's files plus these. Nothing here is live until
``releases/_index.json`` names the new catalog; ``collect_garbage`` then deletes what no live catalog lists (files
of earlier interrupted generations of the release, files merged away), never a newer generation's.

Compaction is leveled, per bucket, so that no night merges the bucket's history. A night's files are level 0
(each spans the whole key range: keys are hashes). Levels 1, 2, ... are each a run of sorted files of at most
``refresh.index_file_rows`` rows whose key ranges do not overlap; level i may hold
``index_file_rows * FANOUT**(i-1)`` rows. When a bucket has more than ``refresh.index_compact_files`` level-0
files they are merged with level 1 (about one file: each night file spans the whole key range, so all of it);
while a level is over its size, one of its files (the one overlapping the fewest rows below) is merged with the
files of the next level its range overlaps. One merge thus holds at most the night files plus about
``(FANOUT + 2) * index_file_rows`` rows, whatever the history, and each row is rewritten about FANOUT times per
level it moves down: a night's compaction costs its own size times a factor growing with log(history).
A lookup (``prior_index.lookup_bucket``) reads, per key, at most one row group of each level-0 file and of one
file per level.
"""
from __future__ import annotations

import io
import json
import re
import sys
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.core.config import Config
from pipeline.core.dataset import attempt_token, iter_part, open_input, read_manifest
from pipeline.core.prior_index import (CATALOGS, FORMAT, KINDS, Catalog, file_schema, index_params, key_from_json,
                                       key_to_json, open_index_file)
from pipeline.core.storage import Storage, StorageError, join
from udfs.prior_keys import band_index_keys, bytes_bucket, long_buckets, url_index_key

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
ENTRY_SCHEMA = pa.schema([("kind", pa.int32()), ("bucket", pa.int32()), ("bkey", pa.binary()), ("lkey", pa.int64()),
                          ("id", pa.string())])
ENTRY_DDL = "kind int, bucket int, bkey binary, lkey long, id string"
ROWS_PER_BATCH = 256
ROW_GROUP_ROWS = 4096     # rows per Parquet row group of an index file: what a lookup reads for one key in one file
FILE_ROWS = 2_000_000     # most rows in one compacted file (refresh.index_file_rows)
FANOUT = 4                # level i (>= 1) holds up to FILE_ROWS * FANOUT**(i-1) rows
EXACT, FUZZY = "dedup_exact", "dedup_fuzzy"


@dataclass(frozen=True)
class KeySources:
    """Where a release's keys come from (dataset URIs)."""
    released: str   # the release's dataset: only its documents get keys
    exact: str      # dedup_exact's input: URL and text-hash keys
    fuzzy: str      # dedup_fuzzy's input: band keys


def key_sources(store: Storage, dataset_uri: str) -> KeySources:
    """Follow the manifests' ``input`` from the released dataset back to the inputs of dedup_exact and
    dedup_fuzzy: the text exactly as each stage hashed it (dedup_exact cuts spans after its lookups). A stage
    that is not in the dataset's lineage (an external dataset): its keys come from the dataset itself."""
    inputs: dict[str, str] = {}
    uri, seen = dataset_uri, set()
    while uri and uri not in seen and not {EXACT, FUZZY} <= set(inputs):
        seen.add(uri)
        man = read_manifest(store, uri)
        if man is None:
            break
        uri = man.get("input", {}).get("uri")
        if uri:
            inputs.setdefault(man["stage"], uri)
    return KeySources(dataset_uri, inputs.get(EXACT, dataset_uri), inputs.get(FUZZY, dataset_uri))


def _entries(kind, bucket, bkey, lkey, ids) -> pa.RecordBatch:
    """Index rows (kind, bucket, bkey | lkey, id) from lists, numpy or Arrow arrays."""
    cols = [c if isinstance(c, pa.Array) else pa.array(c, f.type)
            for c, f in zip((kind, bucket, bkey, lkey, ids), ENTRY_SCHEMA)]
    return pa.record_batch(cols, schema=ENTRY_SCHEMA)


def exact_entries(table: pa.Table, cfg: Config, buckets: int) -> pa.RecordBatch | None:
    """URL and text-hash index rows (kind, bucket, bkey, lkey, id) of some documents of dedup_exact's input,
    keyed as dedup_exact looks them up."""
    from pipeline.stages.dedup_exact import exact_keys
    ids, urls, texts = (table.column(c).to_pylist() for c in ("id", "url", "text"))
    url_keys, hashes = exact_keys(urls, texts, cfg.dedup_exact)
    kind, bucket, bkey, out_id = [], [], [], []
    for i, u, h in zip(ids, url_keys, hashes):
        for k, key in (("url", url_index_key(u) if u else None), ("doc", h)):
            if key is not None:
                kind.append(KIND_CODE[k]), bucket.append(bytes_bucket(key, buckets)), bkey.append(key)
                out_id.append(i)
    return _entries(kind, bucket, bkey, [None] * len(kind), out_id) if kind else None


def band_entries(table: pa.Table, cfg: Config, buckets: int) -> pa.RecordBatch | None:
    """Band index rows of some documents of dedup_fuzzy's input, keyed as dedup_fuzzy computes them."""
    from pipeline.stages.dedup_fuzzy import text_band_keys
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    found = [(i, k) for i, k in text_band_keys(table.column("text").to_pylist(), cfg.dedup_fuzzy.params()) if k.size]
    if not found:
        return None
    idx, keys = np.concatenate([i for i, _ in found]), np.concatenate([k for _, k in found])
    n, wide = len(keys), keys.ndim == 2   # 128-bit keys: 16 bytes in bkey, bucketed by their first half
    return _entries(np.full(n, KIND_CODE["band"], np.int32), long_buckets(keys[:, 0] if wide else keys, buckets),
                    band_index_keys(keys) if wide else pa.nulls(n, pa.binary()),
                    pa.nulls(n, pa.int64()) if wide else keys, ids[idx])


def attempt_folder(release: str, generation: int | None) -> str:
    """Where lease generation ``generation`` writes the index files of ``release`` (relative to the index root;
    ``<release>`` alone before generations)."""
    return release if generation is None else f"{release}/g{generation}"


def _generation_of(rel: str, release: str) -> int:
    """The generation an index file's path (``<release>/g<N>/...``) names; 0 for one written before generations."""
    m = re.match(re.escape(release) + r"/g(\d+)/", rel)
    return int(m.group(1)) if m else 0


def _write_file(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int, t: pa.Table,
                level: int, tag: str = "", row_group_rows: int | None = None) -> dict:
    """One index file of rows sorted by key; returns its catalog entry (with kind and bucket): path, rows, release,
    level, and its smallest and largest key (``prior_index.key_to_json``), which lookups and compaction go by."""
    import pyarrow.parquet as pq
    path = f"{folder}/{kind}/b={bucket:04d}-{tag}{attempt_token()}.parquet"
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="zstd", row_group_size=row_group_rows or ROW_GROUP_ROWS,
                   write_statistics=["key"])
    store.write_bytes(join(root, path), buf.getvalue())
    keys = t.column("key")
    return {"kind": kind, "bucket": bucket, "path": path, "rows": t.num_rows, "release": release, "level": level,
            "min": key_to_json(keys[0].as_py()), "max": key_to_json(keys[-1].as_py())}


def _write_group(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int,
                 tables: list[pa.Table], row_group_rows: int | None = None) -> dict:
    """A night's rows of one (index, bucket): one level-0 file."""
    t = pa.concat_tables(tables).sort_by("key")
    return _write_file(store, root, folder, release, kind, bucket, t, 0, row_group_rows=row_group_rows)


def write_entries(spark, store: Storage, cfg: Config, sources: KeySources, release: str, root: str,
                  buckets: int, folder: str) -> list[dict]:
    """Compute and write the index rows of the released documents; returns the written files."""
    columns = {EXACT: (["id", "url", "text"], exact_entries), FUZZY: (["id", "text"], band_entries)}
    bits = cfg.dedup_fuzzy.key_bits

    def compute(batches):
        for b in batches:
            for uri, what in zip(b.column("uri").to_pylist(), b.column("what").to_pylist()):
                cols, entries = columns[what]
                for chunk in iter_part(store, uri, cols, batch_rows=ROWS_PER_BATCH):  # a row group at a time
                    out = entries(chunk, cfg, buckets)
                    if out is not None:
                        yield out

    def released_ids(batches):
        for b in batches:
            for uri in b.column("uri").to_pylist():
                for t in iter_part(store, uri, ["id"], batch_rows=64 * 1024):
                    yield from t.to_batches()

    def write(batches):
        """Rows arrive sorted by (kind, bucket): one group is held at a time and written when the next begins."""
        metas, cur, tables = [], None, []
        for b in batches:
            t = pa.Table.from_batches([b])
            code = t.column("kind").to_numpy() * 65536 + t.column("bucket").to_numpy()
            cuts = np.flatnonzero(np.diff(code)) + 1
            for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(code)]):
                k = (int(code[s]) // 65536, int(code[s]) % 65536)
                if k != cur and tables:
                    metas.append(_write_group(store, root, folder, release, KINDS[cur[0]], cur[1], tables))
                    tables = []
                cur = k
                g, kind = t.slice(s, e - s), KINDS[k[0]]
                tables.append(pa.table({"key": g.column("lkey" if kind == "band" and bits == 64 else "bkey"),
                                        "id": g.column("id"), "release": pa.array([release] * g.num_rows, pa.string())},
                                       schema=file_schema(kind, bits)))
        if tables:
            metas.append(_write_group(store, root, folder, release, KINDS[cur[0]], cur[1], tables))
        yield pa.RecordBatch.from_pydict({"meta": [json.dumps(metas)]}, schema=pa.schema([("meta", pa.string())]))

    released = open_input(store, sources.released).parts
    tasks = ([(u, EXACT) for u in open_input(store, sources.exact).parts]
             + [(u, FUZZY) for u in open_input(store, sources.fuzzy).parts])
    if not released or not tasks:
        return []
    sc = spark.sparkContext
    ids = spark.createDataFrame(sc.parallelize([(u,) for u in released], len(released)), "uri string")
    ids = ids.mapInArrow(released_ids, "id string")
    rows = (spark.createDataFrame(sc.parallelize(tasks, len(tasks)), "uri string, what string")
            .mapInArrow(compute, ENTRY_DDL).join(ids, "id", "left_semi"))
    n = max(1, min(len(KINDS) * buckets, int(spark.conf.get("spark.sql.shuffle.partitions", "16"))))
    shuffled = rows.repartition(n, "kind", "bucket").sortWithinPartitions("kind", "bucket", "bkey", "lkey")
    out = [m for r in shuffled.mapInArrow(write, "meta string").collect() for m in json.loads(r.meta)]
    return sorted(out, key=lambda m: (m["kind"], m["bucket"], m["path"]))


def entry(meta: dict) -> dict:
    """A written file's catalog entry (its meta without kind and bucket)."""
    return {k: v for k, v in meta.items() if k not in ("kind", "bucket")}


def _level(e: dict) -> int:
    return int(e.get("level", 0)) if "min" in e else 0   # a file from before levels: level 0


@dataclass(frozen=True)
class Compaction:
    """The leveled compaction's settings (module docstring): level-0 files allowed, rows per compacted file."""
    level0_files: int
    file_rows: int
    fanout: int = FANOUT
    row_group_rows: int | None = None

    def target(self, level: int) -> int:
        """Rows level ``level`` (>= 1) may hold before one of its files is pushed down."""
        return self.file_rows * self.fanout ** (level - 1)


def _merge(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int, inputs: list[dict],
           level: int, how: Compaction, stats: dict, key_bits: int = 64) -> list[dict]:
    """Read ``inputs`` (a bounded amount: at most a night's level-0 files or one file and the ones of the next
    level its range overlaps), sort, and write them as files of ``level`` of at most ``how.file_rows`` rows each,
    cut between different keys, so the files of a level never share a key."""
    tables = []
    for e in inputs:
        pf, f = open_index_file(store, join(root, e["path"]))
        try:
            tables.append(pf.read().cast(file_schema(kind, key_bits)))
        finally:
            stats["bytes_read"] += f.bytes
            f.close()
    t = pa.concat_tables(tables).sort_by([("key", "ascending"), ("release", "ascending"), ("id", "ascending")])
    stats["merges"] += 1
    stats["rows_read"] += t.num_rows
    stats["max_merge_rows"] = max(stats["max_merge_rows"], t.num_rows)
    keys, out, start = t.column("key"), [], 0
    while start < t.num_rows:
        end = min(start + how.file_rows, t.num_rows)
        while end < t.num_rows and keys[end].equals(keys[end - 1]):
            end += 1
        out.append(_write_file(store, root, folder, release, kind, bucket, t.slice(start, end - start), level,
                               "c-", how.row_group_rows))
        start = end
    return out


def compact_bucket(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int,
                   files: list[dict], how: Compaction, key_bits: int = 64) -> tuple[list[dict], list[str], dict]:
    """One bucket's leveled compaction (module docstring): returns its live files, the paths merged away, and
    what it read (``merges``, ``rows_read``, ``bytes_read``, ``max_merge_rows``: the most rows one merge held)."""
    stats = {"merges": 0, "rows_read": 0, "bytes_read": 0, "max_merge_rows": 0}
    levels: dict[int, list[dict]] = {}
    for e in files:
        levels.setdefault(_level(e), []).append(e)
    replaced: list[str] = []

    def merge(inputs: list[dict], level: int) -> None:
        new = _merge(store, root, folder, release, kind, bucket, inputs, level, how, stats, key_bits)
        gone = {e["path"] for e in inputs}
        for lv in levels:
            levels[lv] = [e for e in levels[lv] if e["path"] not in gone]
        levels.setdefault(level, []).extend(entry(m) for m in new)
        replaced.extend(sorted(gone))

    def overlapping(e: dict, level: int) -> list[dict]:
        lo, hi = key_from_json(e["min"]), key_from_json(e["max"])
        return [x for x in levels.get(level, [])
                if not (key_from_json(x["max"]) < lo or key_from_json(x["min"]) > hi)]

    l0 = levels.get(0, [])
    if len(l0) > how.level0_files:   # a night's files span the whole key range: about all of level 1 overlaps
        below = (levels.get(1, []) if any("min" not in e for e in l0)
                 else _dedupe([x for e in l0 for x in overlapping(e, 1)]))
        merge(l0 + below, 1)
    while True:
        over = [lv for lv in sorted(levels) if lv >= 1 and sum(e["rows"] for e in levels[lv]) > how.target(lv)]
        if not over:
            break
        lv = over[0]   # push down the file of the level that overlaps the fewest rows below: at most the average
        pick = min(levels[lv], key=lambda e: (sum(x["rows"] for x in overlapping(e, lv + 1)),
                                              key_from_json(e["min"])))
        merge([pick] + overlapping(pick, lv + 1), lv + 1)
    live = [e for lv in sorted(levels)
            for e in (levels[lv] if lv == 0 else sorted(levels[lv], key=lambda e: key_from_json(e["min"])))]
    return live, replaced, stats


def _dedupe(entries: list[dict]) -> list[dict]:
    seen, out = set(), []
    for e in entries:
        if e["path"] not in seen:
            seen.add(e["path"])
            out.append(e)
    return out


def compact(spark, store: Storage, files: dict, root: str, folder: str, release: str, limit: int,
            file_rows: int | None = None, key_bits: int = 64) -> tuple[list[str], dict]:
    """Run ``compact_bucket`` (one Spark task per bucket needing it; in this process without ``spark``) on every
    bucket with more than ``limit`` level-0 files or a level over its target; updates ``files`` in place. Returns
    the paths merged away (deleted once the catalog that no longer lists them is live) and what the merges read.
    ``key_bits``: the band keys' (``dedup_fuzzy.key_bits``)."""
    how = Compaction(limit, file_rows or FILE_ROWS, FANOUT, ROW_GROUP_ROWS)

    def needs(fs: list[dict]) -> bool:
        rows: dict[int, int] = {}
        for e in fs:
            rows[_level(e)] = rows.get(_level(e), 0) + e["rows"]
        return (sum(1 for e in fs if _level(e) == 0) > limit
                or any(lv >= 1 and n > how.target(lv) for lv, n in rows.items()))

    total = {"merges": 0, "rows_read": 0, "bytes_read": 0, "max_merge_rows": 0}
    todo = [(kind, int(b), fs) for kind in KINDS for b, fs in files.get(kind, {}).items() if needs(fs)]
    if not todo:
        return [], total

    def run(t):
        return t[0], t[1], compact_bucket(store, root, folder, release, t[0], t[1], t[2], how, key_bits)
    done = ([run(t) for t in todo] if spark is None
            else spark.sparkContext.parallelize(todo, len(todo)).map(run).collect())
    replaced = []
    for kind, b, (live, gone, stats) in done:
        files[kind][str(b)] = live
        replaced += gone
        for k, v in stats.items():
            total[k] = max(total[k], v) if k == "max_merge_rows" else total[k] + v
    print(f"[refresh] index: compacted {len(todo)} buckets: {total['merges']} merges read {total['rows_read']:,} "
          f"rows ({total['bytes_read']:,} bytes), at most {total['max_merge_rows']:,} rows in one",
          file=sys.stderr)
    return replaced, total


def build_catalog(spark, store: Storage, cfg: Config, dataset_uri: str, release: str, root: str,
                  prior: Catalog | None, generation: int | None = None) -> Catalog:
    """Index the documents of ``dataset_uri`` (the release's dataset) on top of ``prior``, keyed from the dedup
    stages' inputs (``key_sources``); write and return the new catalog. ``generation``: the lease generation
    writing it (its files and catalog name carry it)."""
    t0 = time.time()
    buckets = prior.buckets if prior is not None else cfg.refresh.index_buckets
    sources = key_sources(store, dataset_uri)
    print(f"[refresh] index: keys of the documents of {dataset_uri}: URL and text hash from {sources.exact}, "
          f"bands from {sources.fuzzy}", file=sys.stderr)
    folder = attempt_folder(release, generation)
    new = write_entries(spark, store, cfg, sources, release, root, buckets, folder)
    files: dict[str, dict[str, list[dict]]] = {k: {b: list(fs) for b, fs in (prior.entries(k) if prior else {}).items()}
                                               for k in KINDS}
    for m in new:
        files[m["kind"]].setdefault(str(m["bucket"]), []).append(entry(m))
    replaced, _ = compact(spark, store, files, root, folder, release, cfg.refresh.index_compact_files,
                          cfg.refresh.index_file_rows, cfg.dedup_fuzzy.key_bits)
    added = {k: sum(m["rows"] for m in new if m["kind"] == k) for k in KINDS}
    data = {"format": FORMAT, "release": release, "generation": generation,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "buckets": buckets, "params": index_params(cfg),
            "releases": (prior.releases if prior else []) + [release],
            "rows": {k: sum(f["rows"] for fs in files[k].values() for f in fs) for k in KINDS},
            "added": added, "replaced": replaced,
            "files": {k: dict(sorted(files[k].items(), key=lambda kv: int(kv[0]))) for k in KINDS}}
    uri = join(root, CATALOGS, f"{release if generation is None else f'{release}-g{generation}'}.json")
    store.write_text(uri, json.dumps(data, indent=1))
    print(f"[refresh] index: +{added['url']:,} URL, +{added['doc']:,} text-hash, +{added['band']:,} band keys in "
          f"{len(new)} files ({time.time() - t0:.1f}s); catalog {uri} (not live until the release commits)",
          file=sys.stderr)
    return Catalog(uri, data)


def collect_garbage(store: Storage, catalog: Catalog) -> int:
    """After the commit of ``catalog``: delete index files no live catalog lists: merged away, or left by this
    generation or an older one of the same release (interrupted attempts, lease holders that were taken over).
    A newer generation's files are never touched. Never fails the night: garbage is invisible to readers."""
    live, n = catalog.paths(), 0
    release, generation = catalog.data["release"], catalog.data.get("generation") or 0
    try:
        doomed = [join(catalog.root, p) for p in catalog.data.get("replaced", [])]
        for u in store.list_files(join(catalog.root, release)):
            rel = u[len(catalog.root.rstrip("/")) + 1:]
            if rel not in live and _generation_of(rel, release) <= generation:
                doomed.append(u)
        for uri in doomed:
            store.delete(uri)
            n += 1
    except (StorageError, OSError) as e:
        print(f"[refresh] note: could not delete unused index files: {e}", file=sys.stderr)
    return n
