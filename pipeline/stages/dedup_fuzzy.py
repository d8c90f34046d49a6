"""dedup_fuzzy: MinHash LSH near-duplicate removal, every step distributed in Spark.

1. band keys: one task per input part reads its texts and computes their MinHash band keys
   (``udfs.minhash``) in the same Python worker -> rows (band key, node), node = the document's place in the input
   (part index << 32 | row in the part: distinct for distinct documents by construction, never a hash); a 128-bit
   key (``dedup_fuzzy.key_bits``) is two long columns (key, key2), cheaper to shuffle and sort than 16-byte binary;
2. bucket stars: every member of a bucket is linked to the bucket's smallest node (a window over
   the key, spilling to disk), so a bucket of a million copies gives a million edges, not 5e11 pairs;
3. connected components of those edges (``pipeline.core.connected_components``, large/small star);
4. one keeper per component by ``dedup_fuzzy.keep``; the others get reason ``fuzzy_duplicate``
   with ``duplicate_of`` (the keeper's id) and ``component_size`` in their details; with
   ``dedup_fuzzy.prior_index`` (``mdr refresh``), a component holding a document that shares a band key
   with an earlier release's document is removed whole as ``fuzzy_duplicate_prior``
   (``pipeline.core.prior_index.fuzzy_prior``);
5. one task per input part again streams the part, gets that part's decisions (partitioned by
   the part index) and writes survivors and rejects (Arrow, survivors never become Python rows): texts never enter the JVM and
   each task needs one Python worker, which keeps a small machine's memory low.
Every read streams a part a row group at a time with only the columns it needs (``iter_part``); survivors are
written as parts of about ``run.target_part_bytes`` (``RotatingPartWriter``).
Decisions depend only on the documents, never on how they are split into files or partitions;
output parts k (and k's ``_c<N>`` rotations) hold input part k's survivors, in input order.
"""
from __future__ import annotations

import math
import sys
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import Config
from pipeline.core.connected_components import Checkpoints, connected_components, stage_checkpoints
from pipeline.core.dataset import (REJECT_SCHEMA, Counts, InputDataset, PartInfo, RotatingPartWriter, attempt_token,
                                   iter_part, open_input, reject_row)
from pipeline.core.sparkio import input_schema
from pipeline.core.stage import StageContext, StageResult, StageSpec
from pipeline.core.storage import Storage
from udfs.minhash import MinHashParams, minhasher, threshold_50

REASON_NAME = "fuzzy_duplicate"
PRIOR_REASON = "fuzzy_duplicate_prior"
NODE = "node"
DATE_COLUMN = "warc_date"
ROW_BITS = 32       # a graph node is part index << ROW_BITS | row within the part (``node_ids``)
DOCS_PER_CALL = 64  # documents per signature batch: (64 x num_hashes) uint32 = 2.3 MB at 9000 hashes


def resolve_input(store: Storage, cfg: Config, uri: str) -> InputDataset:
    return open_input(store, uri)


def node_ids(part: int, first_row: int, n: int) -> np.ndarray:
    """Graph nodes of ``n`` documents of input part ``part`` from row ``first_row`` on: part << 32 | row, one
    int64 each. Two documents share a node only if they are the same row of the same part, at any scale (a
    64-bit hash of the id, used before, gave n**2 / 2**65 colliding pairs: ~2.7 at 10**10 documents, each merging
    two unrelated documents' components). Fixed by the input's manifest, so the same input gives the same nodes."""
    if not 0 <= part < 2 ** 31 or first_row + n > 2 ** ROW_BITS:
        raise ValueError(f"input part {part} row {first_row + n}: past the graph's node space (2**31 parts of "
                         f"2**{ROW_BITS} rows); write the input in more, smaller parts")
    return (np.int64(part) << ROW_BITS) | (first_row + np.arange(n, dtype=np.int64))


def _parts(ctx: StageContext):
    """(part, uri, lo, hi) rows, exactly one per partition: a task per input part, or per row range [lo, hi) of a
    part larger than ``run.target_part_bytes`` (``InputDataset.chunks``)."""
    chunks = [(i, u, *(r or (None, None))) for i, u, r in ctx.input.chunks(ctx.cfg.run.target_part_bytes)]
    rdd = ctx.spark.sparkContext.parallelize(chunks, max(1, len(chunks)))
    return ctx.spark.createDataFrame(rdd, "part int, uri string, lo long, hi long")


def scan_parts(ctx: StageContext, columns: list[str], fn, ddl: str):
    """One task per input part (or row range of one): read ``columns`` and turn each Arrow batch into
    ``fn(batch, part, first_row)`` batches in the same Python worker, so the texts never cross into the JVM
    (``first_row``: the batch's first row's number in its part)."""
    store, root = ctx.store, ctx.input.uri

    def run(batches):
        for b in batches:
            for part, uri, lo, hi in zip(*(b.column(c).to_pylist() for c in ("part", "uri", "lo", "hi"))):
                rows = (lo, hi) if lo is not None else None
                at = lo or 0
                for t in iter_part(store, uri, columns, root, rows=rows, batch_rows=4 * DOCS_PER_CALL):
                    for rb in t.to_batches():
                        yield from fn(rb, part, at)
                        at += rb.num_rows

    return _parts(ctx).mapInArrow(run, ddl)


def text_band_keys(texts: list, params: MinHashParams) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row index into ``texts``, band key) arrays, ``DOCS_PER_CALL`` documents at a time: the keys the graph and
    the prior-index lookup use; the cross-release index is written with this same function
    (``pipeline.refresh.prior_build``). A document without shingles has none."""
    mh = minhasher(params)
    for s in range(0, len(texts), DOCS_PER_CALL):
        idx, keys = mh.doc_band_keys(texts[s:s + DOCS_PER_CALL])
        yield idx + s, keys


def key_columns(params: MinHashParams) -> list[str]:
    """The band key's columns: ``key`` (64 bits), or ``key``, ``key2`` (128 bits)."""
    return ["key"] if params.key_bits == 64 else ["key", "key2"]


def band_keys(ctx: StageContext, params: MinHashParams, no_shingles=None):
    """(key[, key2], node) rows: one per band of every document with shingles."""
    names = key_columns(params)

    def compute(b: pa.RecordBatch, part: int, first_row: int):
        nodes = node_ids(part, first_row, b.num_rows)
        texts = b.column(1).to_pylist()
        n_keys = 0
        for idx, keys in text_band_keys(texts, params):
            n_keys += len(keys)
            if len(keys):
                cols = [keys] if keys.ndim == 1 else [keys[:, 0], keys[:, 1]]
                yield pa.RecordBatch.from_arrays([*map(pa.array, cols), pa.array(nodes[idx])], names=[*names, NODE])
        if no_shingles is not None:
            no_shingles.add(len(texts) - n_keys // params.bands)
    return scan_parts(ctx, ["id", "text"], compute, ", ".join(f"{c} long" for c in [*names, NODE]))


def doc_attrs(ctx: StageContext, with_date: bool):
    """(node, part, id, len, date) per document: where it lives and what the keeper rules look at."""
    def compute(b: pa.RecordBatch, part: int, first_row: int):
        ids = b.column(0).cast(pa.string())
        date = b.column(2).cast(pa.string()) if with_date else pa.nulls(b.num_rows, pa.string())
        yield pa.RecordBatch.from_arrays([pa.array(node_ids(part, first_row, b.num_rows)), pa.array([part] * b.num_rows, pa.int32()),
                                          ids, pc.utf8_length(b.column(1)).cast(pa.int64()), date],
                                         names=[NODE, "part", "id", "len", "date"])
    cols = ["id", "text"] + ([DATE_COLUMN] if with_date else [])
    return scan_parts(ctx, cols, compute, f"{NODE} long, part int, id string, len long, date string")


def bucket_stars(bands):
    """Edges (src, dst): each bucket member -> the bucket's smallest node; linear in the bucket size."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    root = F.min(NODE).over(Window.partitionBy(*[c for c in bands.columns if c != NODE]))
    return (bands.withColumn("dst", root).where(F.col(NODE) != F.col("dst"))
            .select(F.col(NODE).alias("src"), "dst"))


def _keep_order(rule: str):
    """The struct whose minimum is the keeper; ties broken by id then node, so the choice is total."""
    from pyspark.sql import functions as F
    if rule == "longest":
        return F.struct((-F.col("len")).alias("k0"), "id", F.col(NODE))
    if rule == "earliest":
        return F.struct(F.col("ts").isNull().alias("k0"), F.col("ts").alias("k1"), "id", F.col(NODE))
    return F.struct("id", F.col(NODE))


def pick_keepers(labels, attrs, rule: str, checkpoints: Checkpoints):
    """(removed: part, id -> duplicate_of, component_size; components: root, size) for components of 2+ documents."""
    from pyspark.sql import functions as F
    members = labels.join(attrs, NODE).withColumn("ts", F.try_to_timestamp(F.col("date")))
    members = checkpoints.cut(members.withColumn("order", _keep_order(rule)), "members")
    comps = members.groupBy("root").agg(F.min("order").alias("keeper"), F.count("*").alias("size"))
    removed = (members.join(comps, "root").where(F.col(NODE) != F.col("keeper")[NODE])
               .select("part", "id", F.col("keeper")["id"].alias("duplicate_of"), F.col("size").alias("component_size")))
    return removed, comps


def component_stats(comps) -> dict:
    """Component count, documents in them, the largest, and sizes binned (2, 3-4, 5-8, ...): numbers only."""
    by_size = {r["size"]: r["count"] for r in comps.groupBy("size").count().collect()}
    bins: dict[int, int] = {}
    for size, n in by_size.items():
        top = 2 if size <= 2 else 1 << math.ceil(math.log2(size))
        bins[top] = bins.get(top, 0) + n
    return {"components": sum(by_size.values()), "docs_in_components": sum(s * n for s, n in by_size.items()),
            "largest_component": max(by_size, default=0),
            "component_sizes": {("2" if t == 2 else f"{t // 2 + 1}-{t}"): bins[t] for t in sorted(bins)}}


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly the schema's columns, in its order (absent ones null), cast to its types."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _write_part(store: Storage, out: str, root: str, part: int, uri: str, dup: dict, schema: pa.Schema, audit: str,
                rate: float, target_bytes: int) -> dict:
    """Survivors of one input part (``root``: the input dataset's) as Arrow (no per-row Python), the removed as
    reject rows (``dup``: id -> (reason, details)), streamed a batch at a time."""
    token, counts = attempt_token(), Counts()
    writer = RotatingPartWriter(store, out, part, token, schema, target_bytes)
    rwriter = RotatingPartWriter(store, out, part, token, REJECT_SCHEMA, target_bytes, rejects=True)
    dup_ids = pa.array(list(dup), pa.string())
    for table in iter_part(store, uri, root=root):
        removed = pc.fill_null(pc.is_in(table.column("id").cast(pa.string()), value_set=dup_ids), False)
        kept = table.filter(pc.invert(removed))
        counts.keep(kept.num_rows)
        writer.write(_conform(kept, schema))
        rows = [reject_row(r["id"], r["url"], *dup[r["id"]], r["text"], audit, rate)
                for r in table.filter(removed).select(["id", "url", "text"]).to_pylist()]
        for r in rows:
            counts.drop(r["reason"])
        if rows:
            rwriter.write(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA))
    return {"counts": counts.to_dict(), "parts": [p.to_dict() for p in writer.close()],
            "rejects": [p.to_dict() for p in rwriter.close()]}


def write_parts(ctx: StageContext, removed, schema: pa.Schema) -> tuple[Counts, list[PartInfo], list[PartInfo]]:
    """Per input part: survivors to part k, removed documents to rejects with their ``duplicate_of``.

    Task k gets part k's uri and decisions through an identity partitioner on the part index (a cogroup
    would hash parts unevenly onto tasks, and adaptive execution would fold its small shuffle into one task).
    """
    store, out, parts, root = ctx.store, ctx.output, ctx.input.parts, ctx.input.uri
    audit, rate, target = ctx.cfg.run.audit, ctx.cfg.run.audit_sample_rate, ctx.cfg.run.target_part_bytes

    def write(items):
        uris, dup = {}, {}
        for part, (uri, doc_id, dup_of, size, reason, release) in items:
            if uri is not None:
                uris[part] = uri
            else:
                details = {"duplicate_of": dup_of, "component_size": size}
                if release is not None:
                    details["prior_release"] = release
                dup[doc_id] = (reason, details)
        for part, uri in uris.items():  # exactly one part per task
            yield _write_part(store, out, root, part, uri, dup, schema, audit, rate, target)

    sc = ctx.spark.sparkContext
    tasks = sc.parallelize([(i, (u, None, None, None, None, None)) for i, u in enumerate(parts)], len(parts))
    decided = removed.rdd.map(lambda r: (r["part"], (None, r["id"], r["duplicate_of"], r["component_size"],
                                                     r["reason"], r["prior_release"])))
    metas = tasks.union(decided).partitionBy(len(parts), lambda part: part).mapPartitions(write).collect()
    counts, kept, rejects = Counts(), [], []
    for m in metas:
        counts.merge(Counts.from_dict(m["counts"]))
        kept += [PartInfo(**p) for p in m["parts"]]
        rejects += [PartInfo(**p) for p in m["rejects"]]
    return counts, kept, rejects


def run(ctx: StageContext) -> StageResult:
    from pyspark.sql import functions as F
    cfg = ctx.cfg.dedup_fuzzy
    params = cfg.params()
    prior = None
    if cfg.prior_index:  # before any work: a catalog made with other MinHash numbers fails here, naming both
        from pipeline.core import prior_index
        prior = prior_index.load_checked(ctx.store, cfg.prior_index, ctx.cfg, ("minhash",))
    schema = input_schema(ctx.store, ctx.input.parts)
    rule = cfg.keep if (cfg.keep != "earliest" or DATE_COLUMN in schema.names) else "smallest_id"

    no_shingles = ctx.spark.sparkContext.accumulator(0)
    checkpoints = stage_checkpoints(ctx)
    try:
        bands = band_keys(ctx, params, no_shingles)
        if prior is not None:
            bands = checkpoints.cut(bands, "bands")  # hashed once: the graph and the prior lookup both read it
        cc = connected_components(bucket_stars(bands), checkpoints=checkpoints,
                                  say=lambda line: print(f"[{ctx.stage}] {line}", file=sys.stderr))
        attrs = doc_attrs(ctx, rule == "earliest")
        removed, comps = pick_keepers(cc.labels, attrs, rule, checkpoints)
        removed = (removed.withColumn("reason", F.lit(REASON_NAME))
                   .withColumn("prior_release", F.lit(None).cast("string")))
        stats = {"minhash": params.name, "preset": cfg.preset, "keep": rule,
                 "threshold_50": round(threshold_50(params.bands, params.rows), 4),
                 "candidate_edges": cc.edges, "cc_rounds": cc.rounds, **component_stats(comps),
                 "docs_without_shingles": no_shingles.value}
        if prior is not None:
            removed, stats["prior_matched_docs"] = prior_index.fuzzy_prior(
                bands, cc.labels, attrs, removed, prior, ctx.store, node=NODE, reason=PRIOR_REASON)
            stats["prior_releases"] = len(prior.releases)
        counts, kept, rejects = write_parts(ctx, removed, schema)
    finally:
        checkpoints.close()
    return StageResult(kept, rejects, schema, counts, [], stats,
                       {"minhash": params.name, "keep": rule, "seed": params.seed,
                        **({"prior_index": cfg.prior_index} if prior is not None else {})})


# shuffle_factor: 5.1 bytes of shuffle (band keys, graph edges) per byte of input parts on bench/scaling.py's 6,000
# pages, with a margin
SPEC = StageSpec("dedup_fuzzy", ("dedup_fuzzy",), resolve_input, run, logic_version=1, shuffle_factor=8.0)
