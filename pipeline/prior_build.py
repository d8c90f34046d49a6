"""Extend the cross-release indexes with a release's documents (``pipeline.prior_index`` describes them).

The keys are those a later night's dedup stages look up, computed from the text each stage looked up: URL and
text-hash keys from dedup_exact's input (before its substring cuts), band keys from dedup_fuzzy's input, both
with the stages' own key functions (``dedup_exact.exact_keys``, ``dedup_fuzzy.text_band_keys``) and kept only
for the documents the release holds. ``key_sources`` finds those inputs through the manifests.

One Spark job: a task per part of those inputs computes its documents' keys; rows of documents the release
does not hold are dropped (a semi-join on the released dataset's ids), the rest shuffled by (index, bucket),
sorted by key, and each task writes one file per (index, bucket) under ``<index root>/<release>/g<N>/`` (N: the
lease generation of the night, so an older holder of the lease never writes the same files). The new catalog
(``_catalogs/<release>-g<N>.json``) lists the earlier catalog's files plus these; a bucket with more than
``refresh.index_compact_files`` files is merged into one. Nothing here is live until ``releases/_index.json``
names the new catalog; ``collect_garbage`` then deletes what no live catalog lists (files of earlier interrupted
generations of the release, files merged away), never a newer generation's.
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

from pipeline.config import Config
from pipeline.dataset import attempt_token, iter_part, open_input, read_manifest
from pipeline.prior_index import CATALOGS, FORMAT, KINDS, Catalog, file_schema, index_params
from pipeline.storage import Storage, StorageError, join
from udfs.prior_keys import band_index_keys, bytes_bucket, long_buckets, url_index_key

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
ENTRY_SCHEMA = pa.schema([("kind", pa.int32()), ("bucket", pa.int32()), ("bkey", pa.binary()), ("lkey", pa.int64()),
                          ("id", pa.string())])
ENTRY_DDL = "kind int, bucket int, bkey binary, lkey long, id string"
ROWS_PER_BATCH = 256
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


def _write_group(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int,
                 tables: list[pa.Table], tag: str = "") -> dict:
    import pyarrow.parquet as pq
    t = pa.concat_tables(tables).sort_by("key")
    path = f"{folder}/{kind}/b={bucket:04d}-{tag}{attempt_token()}.parquet"
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="zstd", row_group_size=256_000)
    store.write_bytes(join(root, path), buf.getvalue())
    return {"kind": kind, "bucket": bucket, "path": path, "rows": t.num_rows, "release": release}


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


def _merge_bucket(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int,
                  paths: list[str], key_bits: int = 64) -> dict:
    import pyarrow.parquet as pq
    tables = []
    for p in paths:
        with store.open_read(join(root, p)) as f:
            tables.append(pq.ParquetFile(io.BytesIO(f.read())).read().cast(file_schema(kind, key_bits)))
    return _write_group(store, root, folder, release, kind, bucket, tables, tag="c-")


def compact(spark, store: Storage, files: dict, root: str, folder: str, release: str, limit: int,
            key_bits: int = 64) -> list[str]:
    """Merge every bucket holding more than ``limit`` files into one file (in place in ``files``); returns the
    paths merged away (deleted once the catalog that no longer lists them is live). ``key_bits``: the band keys'."""
    todo = [(kind, int(b), [f["path"] for f in fs]) for kind in KINDS for b, fs in files.get(kind, {}).items()
            if len(fs) > limit]
    if not todo:
        return []
    merged = (spark.sparkContext.parallelize(todo, len(todo))
              .map(lambda t: _merge_bucket(store, root, folder, release, *t, key_bits)).collect())
    for m in merged:
        files[m["kind"]][str(m["bucket"])] = [{k: m[k] for k in ("path", "rows", "release")}]
    print(f"[refresh] index: merged {len(todo)} buckets holding more than {limit} files each", file=sys.stderr)
    return [p for _, _, paths in todo for p in paths]


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
        files[m["kind"]].setdefault(str(m["bucket"]), []).append({k: m[k] for k in ("path", "rows", "release")})
    replaced = compact(spark, store, files, root, folder, release, cfg.refresh.index_compact_files,
                       cfg.dedup_fuzzy.key_bits)
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
