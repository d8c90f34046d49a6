"""Extend the cross-release indexes with a release's documents (``pipeline.prior_index`` describes them).

One Spark job: a task per part of the released dataset computes each document's URL key, text hash and MinHash
band keys (the same functions and parameters as the dedup stages); rows are shuffled by (index, bucket), sorted
by key, and each task writes one file per (index, bucket) under ``<index root>/<release>/g<N>/`` (N: the lease
generation of the night, so an older holder of the lease never writes the same files). The new catalog
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

import numpy as np
import pyarrow as pa

from pipeline.config import Config
from pipeline.dataset import attempt_token, open_input, read_part
from pipeline.prior_index import CATALOGS, FORMAT, KINDS, Catalog, file_schema, index_params
from pipeline.storage import Storage, StorageError, join
from udfs.prior_keys import bytes_bucket, long_buckets, url_index_key

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
ENTRY_DDL = "kind int, bucket int, bkey binary, lkey long, id string"
DOCS_PER_CALL = 64


def doc_entries(table: pa.Table, cfg: Config, buckets: int) -> pa.RecordBatch:
    """Index rows of some documents: (kind, bucket, bkey | lkey, id); pure function of the texts and the config."""
    from udfs.dochash import text_hash
    from udfs.minhash import minhasher
    from udfs.urlnorm import UrlNormOptions, normalize_url
    ex = cfg.dedup_exact
    opts = UrlNormOptions(ex.url_ignore_scheme, ex.url_strip_www, tuple(ex.url_drop_params))
    ids, urls, texts = (table.column(c).to_pylist() for c in ("id", "url", "text"))
    kind, bucket, bkey, lkey, out_id = [], [], [], [], []
    for i, u, t in zip(ids, urls, texts):
        norm = normalize_url(u, opts) if u else None
        for k, key in (("url", url_index_key(norm) if norm else None), ("doc", text_hash(t, ex.doc_casefold))):
            if key is not None:
                kind.append(KIND_CODE[k]), bucket.append(bytes_bucket(key, buckets)), bkey.append(key)
                lkey.append(None), out_id.append(i)
    n = len(kind)
    cols = [pa.array(kind, pa.int32()), pa.array(bucket, pa.int32()), pa.array(bkey, pa.binary()),
            pa.array(lkey, pa.int64()), pa.array(out_id, pa.string())]
    mh = minhasher(cfg.dedup_fuzzy.params())
    band_parts = []
    for s in range(0, len(texts), DOCS_PER_CALL):
        idx, keys = mh.doc_band_keys([t or "" for t in texts[s:s + DOCS_PER_CALL]])
        if keys.size:
            b = long_buckets(keys, buckets)
            band_parts.append(pa.record_batch(
                [pa.array(np.full(keys.size, KIND_CODE["band"], np.int32)), pa.array(b),
                 pa.nulls(keys.size, pa.binary()), pa.array(keys),
                 pa.array(np.asarray(ids[s:s + DOCS_PER_CALL], dtype=object)[idx], pa.string())],
                names=["kind", "bucket", "bkey", "lkey", "id"]))
    batches = [pa.record_batch(cols, names=["kind", "bucket", "bkey", "lkey", "id"])] if n else []
    table = pa.Table.from_batches(batches + band_parts,
                                  schema=pa.schema([("kind", pa.int32()), ("bucket", pa.int32()), ("bkey", pa.binary()),
                                                    ("lkey", pa.int64()), ("id", pa.string())]))
    return table.combine_chunks().to_batches()[0] if table.num_rows else None


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


def write_entries(spark, store: Storage, cfg: Config, parts: list[str], release: str, root: str,
                  buckets: int, folder: str) -> list[dict]:
    """Compute and write the index rows of a dataset's parts; returns the written files."""
    def compute(batches):
        for b in batches:
            for uri in b.column("uri").to_pylist():
                t = read_part(store, uri, ["id", "url", "text"])
                for chunk in t.to_batches(max_chunksize=4 * DOCS_PER_CALL):
                    out = doc_entries(pa.Table.from_batches([chunk]), cfg, buckets)
                    if out is not None:
                        yield out

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
                tables.append(pa.table({"key": g.column("lkey" if kind == "band" else "bkey"), "id": g.column("id"),
                                        "release": pa.array([release] * g.num_rows, pa.string())},
                                       schema=file_schema(kind)))
        if tables:
            metas.append(_write_group(store, root, folder, release, KINDS[cur[0]], cur[1], tables))
        yield pa.RecordBatch.from_pydict({"meta": [json.dumps(metas)]}, schema=pa.schema([("meta", pa.string())]))

    if not parts:
        return []
    uris = spark.createDataFrame(spark.sparkContext.parallelize([(u,) for u in parts], len(parts)), "uri string")
    rows = uris.mapInArrow(compute, ENTRY_DDL)
    n = max(1, min(len(KINDS) * buckets, int(spark.conf.get("spark.sql.shuffle.partitions", "16"))))
    shuffled = rows.repartition(n, "kind", "bucket").sortWithinPartitions("kind", "bucket", "bkey", "lkey")
    out = [m for r in shuffled.mapInArrow(write, "meta string").collect() for m in json.loads(r.meta)]
    return sorted(out, key=lambda m: (m["kind"], m["bucket"], m["path"]))


def _merge_bucket(store: Storage, root: str, folder: str, release: str, kind: str, bucket: int,
                  paths: list[str]) -> dict:
    import pyarrow.parquet as pq
    tables = []
    for p in paths:
        with store.open_read(join(root, p)) as f:
            tables.append(pq.ParquetFile(io.BytesIO(f.read())).read().cast(file_schema(kind)))
    return _write_group(store, root, folder, release, kind, bucket, tables, tag="c-")


def compact(spark, store: Storage, files: dict, root: str, folder: str, release: str, limit: int) -> list[str]:
    """Merge every bucket holding more than ``limit`` files into one file (in place in ``files``); returns the
    paths merged away (deleted once the catalog that no longer lists them is live)."""
    todo = [(kind, int(b), [f["path"] for f in fs]) for kind in KINDS for b, fs in files.get(kind, {}).items()
            if len(fs) > limit]
    if not todo:
        return []
    merged = (spark.sparkContext.parallelize(todo, len(todo))
              .map(lambda t: _merge_bucket(store, root, folder, release, *t)).collect())
    for m in merged:
        files[m["kind"]][str(m["bucket"])] = [{k: m[k] for k in ("path", "rows", "release")}]
    print(f"[refresh] index: merged {len(todo)} buckets holding more than {limit} files each", file=sys.stderr)
    return [p for _, _, paths in todo for p in paths]


def build_catalog(spark, store: Storage, cfg: Config, dataset_uri: str, release: str, root: str,
                  prior: Catalog | None, generation: int | None = None) -> Catalog:
    """Index ``dataset_uri`` (the release's documents) on top of ``prior``; write and return the new catalog.
    ``generation``: the lease generation writing it (its files and catalog name carry it)."""
    t0 = time.time()
    buckets = prior.buckets if prior is not None else cfg.refresh.index_buckets
    parts = open_input(store, dataset_uri).parts
    folder = attempt_folder(release, generation)
    new = write_entries(spark, store, cfg, parts, release, root, buckets, folder)
    files: dict[str, dict[str, list[dict]]] = {k: {b: list(fs) for b, fs in (prior.entries(k) if prior else {}).items()}
                                               for k in KINDS}
    for m in new:
        files[m["kind"]].setdefault(str(m["bucket"]), []).append({k: m[k] for k in ("path", "rows", "release")})
    replaced = compact(spark, store, files, root, folder, release, cfg.refresh.index_compact_files)
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
