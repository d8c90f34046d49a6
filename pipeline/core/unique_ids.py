"""Document ids are unique within a dataset: a stage whose kept rows and rejects together hold an id twice, or a
null or empty one, fails naming them (up to ``SHOWN`` and the count) before its manifest is written.

A Spark stage's output of more than ``LOCAL_MAX_ROWS`` rows (kept and rejects) is checked on its Spark session: one
job, a task per group of files decoding only their id column, one aggregation. A smaller one is checked on the
driver, which reads only the id columns (a few MB): the Spark job took 2.9 s whatever the size, 5% of a
10,000-page extract job (bench/extract_throughput.py). A Ray stage (quality) only keeps or removes the rows it
reads, so its output is checked only when its input is external (not written by a stage that was checked): on the
driver, ids only.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.dataset import open_parquet
from pipeline.core.stage import StageContext, StageFailed, StageResult
from pipeline.core.storage import Storage, join

SHOWN = 10
LOCAL_MAX_ROWS = 1_000_000  # ids checked on the driver at most (~50 MB of strings); more go to Spark
ROWS_PER_TASK = 500_000     # ids a Spark task reads and shuffles


def read_ids(store: Storage, uri: str) -> pa.ChunkedArray:
    """The id column of a part file this pipeline wrote, as stored (null and empty ids too): only that column is
    read, a row group at a time."""
    chunks = [b.column(0).cast(pa.string()) for b in open_parquet(store, uri).iter_batches(batch_size=65536,
                                                                                         columns=["id"])]
    return pa.chunked_array(chunks, pa.string())


def spark_bad_ids(spark, store: Storage, uris: list[str], rows: int = 0) -> tuple[int, list[str | None]]:
    """(how many distinct ids occur twice or are null/empty, the first ``SHOWN`` of them sorted), on Spark; ``rows``:
    the ids in all, which size the reading tasks (``ROWS_PER_TASK`` each, so a task's shuffle buffer does not grow
    with the dataset; at least 4 tasks per core, at most one per file)."""
    from pyspark.sql import functions as F

    def read(batches):
        for b in batches:
            for uri in b.column("uri").to_pylist():
                for chunk in read_ids(store, uri).chunks:
                    yield pa.RecordBatch.from_arrays([chunk], names=["id"])

    tasks = max(1, min(len(uris), max(4 * spark.sparkContext.defaultParallelism, -(-rows // ROWS_PER_TASK))))
    ids = spark.createDataFrame([(u,) for u in uris], "uri string").repartition(tasks).mapInArrow(read, "id string")
    bad = (ids.groupBy("id").count().where((F.col("count") > 1) | F.col("id").isNull() | (F.col("id") == ""))
           .select("id").cache())
    try:
        n = bad.count()
        shown = [r["id"] for r in bad.orderBy(F.col("id").asc_nulls_first()).limit(SHOWN).collect()] if n else []
    finally:
        bad.unpersist()
    return n, shown


def local_bad_ids(store: Storage, uris: list[str]) -> tuple[int, list[str | None]]:
    """The same as ``spark_bad_ids``, on this process (the ids of every file in memory; files read by 8 threads,
    as an object store serves them one request at a time)."""
    with ThreadPoolExecutor(8) as pool:
        columns = list(pool.map(lambda u: read_ids(store, u), uris))
    ids = pa.chunked_array([c for col in columns for c in col.chunks], pa.string())
    vc = pc.value_counts(ids)
    values, counts = vc.field("values"), vc.field("counts")
    bad = values.filter(pc.or_kleene(pc.or_kleene(pc.greater(counts, 1), pc.is_null(values)),
                                     pc.equal(values, "")))
    nulls = bad.null_count
    return len(bad), ([None] * min(nulls, 1) + sorted(bad.drop_null().to_pylist()))[:SHOWN]


def check_unique_ids(ctx: StageContext, result: StageResult, engine: str) -> None:
    """Raise ``StageFailed`` naming the ids that occur twice (or are null/empty) in the stage's output and rejects."""
    written = result.parts + result.rejects
    if not written:
        return
    files = [join(ctx.output, p.path) for p in written]
    rows = sum(p.rows for p in written)
    if engine == "spark" and rows > LOCAL_MAX_ROWS:
        n, shown = spark_bad_ids(ctx.spark, ctx.store, files, rows)
    elif engine == "spark" or ctx.input.external:
        n, shown = local_bad_ids(ctx.store, files)
    else:
        return
    if n:
        more = f" (the first {len(shown)} shown)" if n > len(shown) else ""
        raise StageFailed(f"stage {ctx.stage}: {n:,} document ids occur more than once, or are null/empty, in its "
                          f"output and rejects{more}: {', '.join(repr(i) for i in shown)}; ids must be unique within "
                          f"a dataset: an input file given twice (a WARC listed twice) repeats its ids, and an input's "
                          f"id column must not repeat one (leave ids out or null, and each row is named by its file's "
                          f"path and row number); nothing was committed")
