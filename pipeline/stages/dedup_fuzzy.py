"""dedup_fuzzy: MinHash LSH near-duplicate removal, every step distributed in Spark.

1. band keys: one Arrow task per input partition computes each document's MinHash band keys
   (``udfs.minhash``) -> rows (band key, node), node = xxhash64(id);
2. bucket stars: every member of a bucket is linked to the bucket's smallest node (a window over
   the key, spilling to disk), so a bucket of a million copies gives a million edges, not 5e11 pairs;
3. connected components of those edges (``pipeline.connected_components``, large/small star);
4. one keeper per component by ``dedup_fuzzy.keep``; the others get reason ``fuzzy_duplicate``
   with ``duplicate_of`` (the keeper's id) and ``component_size`` in their details.
Output: the input's columns, in ``ceil(rows / run.target_part_rows)`` parts hashed by id and sorted
by id, so two runs, or runs over differently split input, write the same rows in the same parts.
"""
from __future__ import annotations

import math

import pyarrow as pa

from pipeline.config import Config
from pipeline.connected_components import connected_components, cut_lineage
from pipeline.dataset import InputDataset, open_input
from pipeline.runner import StageSpec
from pipeline.sparkio import DETAILS, REASON, read_dataframe, write_dataframe
from pipeline.stage import StageContext, StageResult
from pipeline.storage import Storage
from udfs.minhash import MinHashParams, minhasher, threshold_50

REASON_NAME = "fuzzy_duplicate"
NODE = "_mh_node"
DATE_COLUMN = "warc_date"
DOCS_PER_CALL = 256


def resolve_input(store: Storage, cfg: Config, uri: str) -> InputDataset:
    return open_input(store, uri)


def band_keys(docs, params: MinHashParams, no_shingles=None):
    """(key, node) rows: one per band of every document with shingles; ``docs`` has NODE and text."""
    def compute(batches):
        mh = minhasher(params)
        for b in batches:
            nodes = b.column(0).to_numpy(zero_copy_only=False)
            texts = b.column(1).to_pylist()
            for s in range(0, len(texts), DOCS_PER_CALL):
                idx, keys = mh.doc_band_keys(texts[s:s + DOCS_PER_CALL])
                if no_shingles is not None:
                    no_shingles.add(len(texts[s:s + DOCS_PER_CALL]) - idx.size // params.bands)
                if keys.size:
                    yield pa.RecordBatch.from_arrays([pa.array(keys), pa.array(nodes[s:s + DOCS_PER_CALL][idx])],
                                                     names=["key", NODE])
    return docs.select(NODE, "text").mapInArrow(compute, f"key long, {NODE} long")


def bucket_stars(bands):
    """Edges (src, dst): each bucket member -> the bucket's smallest node; linear in the bucket size."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    root = F.min(NODE).over(Window.partitionBy("key"))
    return (bands.withColumn("dst", root).where(F.col(NODE) != F.col("dst"))
            .select(F.col(NODE).alias("src"), "dst"))


def _keep_order(rule: str, has_date: bool):
    """The struct whose minimum is the keeper; ties broken by id then node, so the choice is total."""
    from pyspark.sql import functions as F
    if rule == "longest":
        return F.struct((-F.col("len")).alias("k0"), "id", F.col(NODE))
    if rule == "earliest" and has_date:
        return F.struct(F.col("date").isNull().alias("k0"), F.col("date").alias("k1"), "id", F.col(NODE))
    return F.struct("id", F.col(NODE))


def pick_keepers(labels, docs, rule: str, has_date: bool):
    """(removed: node -> duplicate_of, component_size; components: root, size) for components of 2+ nodes."""
    from pyspark.sql import functions as F
    date = (F.try_to_timestamp(F.col(DATE_COLUMN).cast("string")) if has_date
            else F.lit(None).cast("timestamp"))
    attrs = docs.select(NODE, "id", F.length("text").alias("len"), date.alias("date"))
    members = (labels.join(attrs, labels["node"] == attrs[NODE]).groupBy(NODE, "root")
               .agg(F.min("id").alias("id"), F.max("len").alias("len"), F.min("date").alias("date")))
    members = cut_lineage(members.withColumn("order", _keep_order(rule, has_date)))
    comps = members.groupBy("root").agg(F.min("order").alias("keeper"), F.count("*").alias("size"))
    removed = (members.join(comps, "root").where(F.col(NODE) != F.col("keeper")[NODE])
               .select(NODE, F.col("keeper")["id"].alias("duplicate_of"), F.col("size").alias("component_size")))
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


def run(ctx: StageContext) -> StageResult:
    from pyspark.sql import functions as F
    cfg = ctx.cfg.dedup_fuzzy
    params = cfg.params()
    spark = ctx.spark
    docs = read_dataframe(ctx)
    has_date = DATE_COLUMN in docs.columns
    rule = cfg.keep if (cfg.keep != "earliest" or has_date) else "smallest_id"
    docs = docs.withColumn(NODE, F.xxhash64("id"))

    no_shingles = spark.sparkContext.accumulator(0)
    cc = connected_components(bucket_stars(band_keys(docs, params, no_shingles)))
    removed, comps = pick_keepers(cc.labels, docs, rule, has_date)

    rows = ctx.input.rows if ctx.input.rows is not None else docs.count()
    nparts = max(1, math.ceil(rows / ctx.cfg.run.target_part_rows))
    out = (docs.join(removed, NODE, "left")
           .withColumn(REASON, F.when(F.col("duplicate_of").isNotNull(), F.lit(REASON_NAME)))
           .withColumn(DETAILS, F.when(F.col("duplicate_of").isNotNull(),
                                       F.to_json(F.struct("duplicate_of", "component_size"))))
           .drop("duplicate_of", "component_size")
           .repartition(nparts, "id").sortWithinPartitions("id", NODE, "text")
           .drop(NODE))

    stats = {"minhash": params.name, "preset": cfg.preset, "keep": rule,
             "threshold_50": round(threshold_50(params.bands, params.rows), 4),
             "candidate_edges": cc.edges, "cc_rounds": cc.rounds, **component_stats(comps)}
    result = write_dataframe(ctx, out, stats=stats, params={"minhash": params.name, "keep": rule, "seed": params.seed})
    result.stats["docs_without_shingles"] = no_shingles.value
    return result


SPEC = StageSpec("dedup_fuzzy", ("dedup_fuzzy",), resolve_input, run)
