"""Datasets in and out of Spark DataFrames through Python I/O (no s3a needed), with manifest semantics.

``read_dataframe`` turns the committed parts of an input into a DataFrame (one task per part, Arrow
batches, no driver round trip). ``write_dataframe`` writes a DataFrame that carries a ``_reason``
column (null = kept) and an optional ``_details`` column (JSON scores) as kept parts plus rejects,
counting per partition, and returns a ``StageResult`` the runner commits. Retried tasks write files
under new names; only the attempt Spark reports back is listed. Reading streams each part a row group at a
time (``iter_part``); writing rotates parts at ``run.target_part_bytes`` (``RotatingPartWriter``), so a
partition of any size is written as parts of about that size.
"""
from __future__ import annotations

import json

import pyarrow as pa

from pipeline.core.dataset import (READ_BATCH_ROWS, REJECT_SCHEMA, Counts, PartInfo, RotatingPartWriter, attempt_token,
                                   iter_part, open_parquet, part_schema, reject_row)
from pipeline.core.stage import Progress, StageContext, StageResult
from pipeline.core.storage import Storage, join

REASON, DETAILS = "_reason", "_details"


def _arrow_to_spark(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema
    return from_arrow_schema(schema)


def _spark_to_arrow(schema, timezone: str | None = None) -> pa.Schema:
    """``timezone``: the session's, needed when the schema has timestamps."""
    from pyspark.sql.pandas.types import to_arrow_schema
    return to_arrow_schema(schema, timezone=timezone)


def input_schema(store: Storage, parts: list[str], columns: list[str] | None = None) -> pa.Schema:
    """The Arrow schema of a dataset's rows, from the first part's Parquet footer (ranged reads of a few KB, the
    exact types; an external JSONL file has no footer and is read)."""
    schema = part_schema(store, parts[0])
    return pa.schema([schema.field(c) for c in columns]) if columns else schema


def read_dataframe(ctx: StageContext, columns: list[str] | None = None):
    """The input dataset as a DataFrame, a Spark partition per part file, or per row range of one larger than
    ``run.target_part_bytes`` (``InputDataset.chunks``)."""
    schema = input_schema(ctx.store, ctx.input.parts, columns)
    return read_parts(ctx.spark, ctx.store, ctx.input.parts, schema, ctx.input.uri,
                      chunks=[(u, r) for _, u, r in ctx.input.chunks(ctx.cfg.run.target_part_bytes)])


def read_parts(spark, store: Storage, parts: list[str], schema: pa.Schema, root: str | None = None,
               raw: bool = False, chunks: list[tuple[str, tuple[int, int] | None]] | None = None):
    """Part files (Parquet or JSONL) as a DataFrame of ``schema``'s columns, one Spark partition per file.
    ``raw``: Parquet files read as they are, not as dataset parts (no id/url/text columns needed).
    ``chunks``: (uri, row range or None for all rows) per partition instead, from ``InputDataset.chunks``."""
    cols = schema.names
    if not parts:
        return spark.createDataFrame([], _arrow_to_spark(schema))
    if chunks is None:
        chunks = [(u, None) for u in parts]
    tasks = [(u, *(r or (None, None))) for u, r in chunks]

    def read(batches):
        for b in batches:
            for uri, lo, hi in zip(*(b.column(c).to_pylist() for c in ("uri", "lo", "hi"))):
                rows = (lo, hi) if lo is not None else None
                tables = (pa.Table.from_batches([b]) for b in open_parquet(store, uri).iter_batches(
                    READ_BATCH_ROWS, columns=cols, use_threads=False)) if raw else iter_part(store, uri, cols, root,
                                                                                             rows=rows)
                for table in tables:
                    yield from table.cast(schema).to_batches()

    uris = spark.createDataFrame(tasks, "uri string, lo long, hi long").repartition(len(tasks))
    return uris.mapInArrow(read, _arrow_to_spark(schema))


def write_parquet_parts(df, store: Storage, folder: str, target_bytes: int) -> tuple[list[str], pa.Schema]:
    """Every row of ``df`` as Parquet parts of about ``target_bytes`` under ``folder`` (written by each partition's
    task through ``store``, ``RotatingPartWriter``): the written parts' URIs, as the attempts Spark reports back
    name them, and their schema."""
    from pyspark.sql.types import StringType, StructField, StructType

    schema = _spark_to_arrow(df.schema, df.sparkSession.conf.get("spark.sql.session.timeZone"))

    def write(batches):
        from pyspark import TaskContext
        tc = TaskContext.get()
        writer = RotatingPartWriter(store, folder, tc.partitionId() if tc else 0, attempt_token(), schema, target_bytes)
        for b in batches:
            writer.write(b)
        yield pa.RecordBatch.from_pydict({"uri": [join(folder, p.path) for p in writer.close()]},
                                         schema=pa.schema([("uri", pa.string())]))

    rows = df.mapInArrow(write, StructType([StructField("uri", StringType())])).collect()
    return sorted(r.uri for r in rows), schema


def write_dataframe(ctx: StageContext, df, stats: dict | None = None, params: dict | None = None) -> StageResult:
    """Write kept rows (``_reason`` null) as parts and the rest as rejects; counts come from the rows."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    store, out = ctx.store, ctx.output
    audit, rate = ctx.cfg.run.audit, ctx.cfg.run.audit_sample_rate
    if DETAILS not in df.columns:
        df = df.withColumn(DETAILS, F.lit(None).cast("string"))
    data_cols = [c for c in df.columns if c not in (REASON, DETAILS)]
    out_schema = _spark_to_arrow(df.select(*data_cols).schema)
    meta_schema = StructType([StructField("meta", StringType())])
    sc = ctx.spark.sparkContext
    written = sc.accumulator(0)
    target = ctx.cfg.run.target_part_bytes

    def write(batches):
        from pyspark import TaskContext
        tc = TaskContext.get()
        task = tc.partitionId() if tc else 0
        token = attempt_token()
        counts = Counts()
        writer = RotatingPartWriter(store, out, task, token, out_schema, target)
        rwriter = RotatingPartWriter(store, out, task, token, REJECT_SCHEMA, target, rejects=True)
        for b in batches:
            t = pa.Table.from_batches([b])
            written.add(t.num_rows)
            reasons = t.column(REASON)
            kept_mask = reasons.is_null()
            kept = t.filter(kept_mask).select(data_cols)
            n_kept = kept.num_rows
            if n_kept:
                counts.keep(n_kept)
                writer.write(kept.cast(out_schema))
            dropped = t.filter(pa.compute.invert(kept_mask))
            if dropped.num_rows:
                d = dropped.to_pydict()
                rows = []
                texts = d.get("text") or [None] * dropped.num_rows
                urls = d.get("url") or [None] * dropped.num_rows
                for i in range(dropped.num_rows):
                    counts.drop(d[REASON][i])
                    details = json.loads(d[DETAILS][i]) if d[DETAILS][i] else None
                    rows.append(reject_row(d["id"][i], urls[i], d[REASON][i], details, texts[i], audit, rate))
                rwriter.write(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA))
        meta = {"counts": counts.to_dict(), "parts": [p.to_dict() for p in writer.close()],
                "rejects": [p.to_dict() for p in rwriter.close()]}
        yield pa.RecordBatch.from_pydict({"meta": [json.dumps(meta)]})

    import pyarrow.compute  # noqa: F401  (pa.compute used in the task)
    with Progress(ctx.stage, sc, None, "documents written", written):
        metas = [json.loads(r.meta) for r in df.mapInArrow(write, meta_schema).collect()]
    counts, parts, rejects = Counts(), [], []
    for m in metas:
        counts.merge(Counts.from_dict(m["counts"]))
        parts += [PartInfo(**p) for p in m["parts"]]
        rejects += [PartInfo(**p) for p in m["rejects"]]
    return StageResult(parts, rejects, out_schema, counts, [], stats or {}, params or {})
