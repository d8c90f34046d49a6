"""dedup_exact: URL dedup, whole-document dedup, then exact-substring dedup, as one Spark stage.

1. URL: one document per normalized URL (``udfs.urlnorm``) is kept by ``url_keep``; the others are
   ``duplicate_url``. A document without a usable URL is never a URL duplicate.
2. Document: one document per hash of its normalized text (``udfs.dochash``), same keep rule, among
   the documents step 1 kept; the others are ``duplicate_text``.
3. Substring: every k-token window of every kept document is hashed (``udfs.exact_substring``) and
   shuffled by hash as (hash, k1, kp) longs, 24 bytes a token before compression (``hash_bits=128``: (hash, hash2,
   k1, kp), 32 bytes). Per hash, the
   occurrence with the smallest (k1, k2, position) is kept, where (k1, k2) is a 96-bit hash of the
   document's id and text: a deterministic order that favours no source. Every later occurrence
   (``rank() > 1``) marks its k tokens; marks go back to their document by (k1, k2), merge into spans
   and are cut. ``exact_removed_chars`` says how much went; a document cut below
   ``min_chars_after_cut`` / ``min_tokens_after_cut`` is ``exact_substring_removed``.
The manifest's stats carry Spark's shuffle bytes for the stage, per GB of input text and of input files.

With ``dedup_exact.prior_index`` (``mdr refresh``), step 1 first removes documents whose normalized URL an
earlier release holds (``duplicate_url_prior``) and step 2 those whose text hash one holds
(``duplicate_text_prior``): a released document always wins, whatever ``url_keep`` says, since releases are
never changed. Step 3 stays within this dataset: a window index over every release would cost a shuffle of all
released text each night (``pipeline.core.prior_index``).

Memory: the window shuffle is sorted by Spark (spilling to disk), never held by one process. All
copies of one window hash meet in one task: boilerplate shared by millions of documents makes that
task large (Spark's window buffer spills past spark.sql.windowExec.buffer.spill.threshold rows),
so such a corpus is slower, not out of memory. Marks travel back only for later copies. The same holds for
step 2's biggest group, often the empty documents (one text hash, and duplicates of each other). Steps 1 and 2
group only live rows with a key: a row without one (no URL) is its own group, spread by its document hash, so a
URL-less dataset does not meet in one task.
"""
from __future__ import annotations

import json
import secrets
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import Config, DedupExactConfig
from pipeline.core.connected_components import Checkpoints, stage_checkpoints
from pipeline.core.dataset import InputDataset, open_input
from pipeline.core.sparkio import DETAILS, REASON, read_dataframe, write_dataframe
from pipeline.core.stage import StageContext, StageResult, StageSpec
from pipeline.core.storage import Storage
from udfs.dochash import text_hash
from udfs.exact_substring import check_tokenizer, cut_repeats, doc_order_key, window_hashes
from udfs.urlnorm import UrlNormOptions, normalize_url

URL_KEY, TEXT_HASH, K1, K2, LIVE, MARKS = "_url_key", "_text_hash", "_k1", "_k2", "_live", "_marks"
REMOVED_CHARS = "exact_removed_chars"
INTERNAL = (URL_KEY, TEXT_HASH, K1, K2, LIVE)


# shuffle partitions' worth of windows each task that cuts documents writes (see ``plan``)
CUT_TASK_PARTITIONS = 8


def window_row_bytes(hash_bits: int) -> int:
    """A shuffled window as a Spark UnsafeRow: null bitmap + the hash's longs, k1 and kp."""
    return 8 + (hash_bits // 64 + 2) * 8


class PerPartition:
    """Accumulator param {partition: value} merged by max: a partition computed twice (two consumers of one plan)
    counts once."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, a: dict, b: dict) -> dict:
        for key, v in b.items():
            a[key] = max(a.get(key, 0), v)
        return a


def accumulators(sc) -> dict:
    """The stage's counters, as ``plan`` adds to them (they end in the manifest's stats). ``prepared_rows`` counts
    every row run through ``prepare``, recomputations and task retries included: the input's count when each
    document was keyed once (three times that with only the substring step, where recomputing is cheaper)."""
    acc = {n: sc.accumulator(0) for n in ("tokens", "windows", "marked_windows", "removed_chars", "prepared_rows")}
    acc["text_bytes"] = sc.accumulator({}, PerPartition())
    return acc


def resolve_input(store: Storage, cfg: Config, uri: str) -> InputDataset:
    return open_input(store, uri)


def keep_order(df, rule: str):
    """Sort order of the keep rule: the first row of a group is the one kept."""
    from pyspark.sql import functions as F
    by_id = F.col("id").asc_nulls_last()
    if rule == "longest":
        return [F.length("text").desc_nulls_last(), by_id]
    if "warc_date" not in df.columns:
        return [by_id]
    date = F.col("warc_date")
    return [date.desc_nulls_last() if rule == "latest" else date.asc_nulls_last(), by_id]


def exact_keys(urls: list, texts: list, cfg: DedupExactConfig, url: bool = True,
               doc: bool = True) -> tuple[list, list]:
    """(URL key, text hash) of each document, as steps 1 and 2 and their prior-index lookups compare them (None
    where not wanted); the cross-release index is written with this same function (``pipeline.refresh.prior_build``)."""
    opts = UrlNormOptions(cfg.url_ignore_scheme, cfg.url_strip_www, tuple(cfg.url_drop_params))
    url_keys = [normalize_url(u, opts) for u in urls] if url else [None] * len(urls)
    hashes = [text_hash(t, cfg.doc_casefold) for t in texts] if doc else [None] * len(texts)
    return url_keys, hashes


def prepare(df, cfg: DedupExactConfig, acc):
    """One pass over the input: URL key, text hash, document order key; counts text bytes."""
    from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType

    want_url, want_hash = cfg.url_dedup, cfg.doc_dedup
    schema = StructType(df.schema.fields + [StructField(URL_KEY, StringType()), StructField(TEXT_HASH, BinaryType()),
                                            StructField(K1, LongType()), StructField(K2, IntegerType())])

    def fn(batches):
        from pyspark import TaskContext
        text_bytes = 0
        for b in batches:
            ids, urls, texts = (b.column(c).to_pylist() for c in ("id", "url", "text"))
            keys = [doc_order_key(i, t) for i, t in zip(ids, texts)]
            text_bytes += pc.sum(pc.binary_length(b.column("text"))).as_py() or 0
            acc["prepared_rows"].add(b.num_rows)
            url_keys, hashes = exact_keys(urls, texts, cfg, want_url, want_hash)
            cols = b.columns + [pa.array(url_keys, pa.string()), pa.array(hashes, pa.binary()),
                                pa.array([k[0] for k in keys], pa.int64()), pa.array([k[1] for k in keys], pa.int32())]
            yield pa.RecordBatch.from_arrays(cols, names=b.schema.names + [URL_KEY, TEXT_HASH, K1, K2])
        tc = TaskContext.get()
        acc["text_bytes"].add({tc.partitionId() if tc else 0: text_bytes})

    return df.mapInArrow(fn, schema)


def _mark_duplicates(df, key: str, reason: str, order, details: dict):
    """Among live rows sharing a non-null ``key``, all but the first by ``order`` get ``reason``.

    Only those rows are grouped by ``key``: a row without a key (no URL) or already removed is its own group,
    spread by its document hash, so the documents of a URL-less dataset do not all meet in one task."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    grouped = F.col(LIVE) & F.col(key).isNotNull()
    w = Window.partitionBy(F.when(grouped, F.col(key)), F.when(~grouped, F.col(K1))).orderBy(*order)
    dup = grouped & (F.row_number().over(w) > 1)
    info = F.to_json(F.struct(F.first("id").over(w).alias("duplicate_of"),
                              *[c.alias(n) for n, c in details.items()]))
    return (df.withColumn("_dup", dup)
              .withColumn(REASON, F.when(F.col("_dup"), F.lit(reason)).otherwise(F.col(REASON)))
              .withColumn(DETAILS, F.when(F.col("_dup"), info).otherwise(F.col(DETAILS)))
              .withColumn(LIVE, F.col(REASON).isNull())
              .drop("_dup"))


def window_rows(df, k: int, tokenizer: str, acc, bits: int = 64):
    """(h[, h2], k1, kp) for every k-token window of the live documents; kp = k2 << 32 | token position; h2: the
    second half of a 128-bit hash."""
    from pyspark.sql.types import LongType, StructField, StructType

    hashes = ["h"] if bits == 64 else ["h", "h2"]
    schema = StructType([StructField(c, LongType()) for c in (*hashes, "k1", "kp")])

    def fn(batches):
        for b in batches:
            texts = b.column("text").to_pylist()
            k1 = b.column(K1).to_numpy(zero_copy_only=False)
            k2 = b.column(K2).to_numpy(zero_copy_only=False).astype(np.int64)
            doc, pos, h, n_tokens = window_hashes(texts, k, tokenizer, bits)
            acc["tokens"].add(int(n_tokens.sum()))
            acc["windows"].add(len(h))
            if len(h):
                kp = (k2[doc] << 32) | pos.astype(np.int64)
                cols = [h] if h.ndim == 1 else [h[:, 0], h[:, 1]]
                yield pa.RecordBatch.from_arrays([*map(pa.array, cols), pa.array(k1[doc]), pa.array(kp)],
                                                 names=[*hashes, "k1", "kp"])

    return df.select("text", K1, K2).mapInArrow(fn, schema)


def marked_windows(windows):
    """Per document (k1, k2): token positions of window copies that are not the first of their hash."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(*[c for c in windows.columns if c not in ("k1", "kp")]).orderBy("k1", "kp")
    later = windows.withColumn("_r", F.rank().over(w)).where(F.col("_r") > 1)
    return (later.select(F.col("k1").alias(K1), F.shiftright("kp", 32).cast("int").alias(K2),
                         F.col("kp").bitwiseAND(F.lit(0xFFFFFFFF)).cast("int").alias("pos"))
                 .groupBy(K1, K2).agg(F.collect_list("pos").alias(MARKS)))


def apply_cuts(df, cfg: DedupExactConfig, acc):
    """Cut the marked spans; too little left -> exact_substring_removed."""
    from pyspark.sql.types import LongType, StructField, StructType

    out_fields = [f for f in df.schema.fields if f.name != MARKS] + [StructField(REMOVED_CHARS, LongType())]
    names = [f.name for f in out_fields]
    k, tok, min_chars, min_tokens = cfg.k, cfg.tokenizer, cfg.min_chars_after_cut, cfg.min_tokens_after_cut
    has_chars = "text_chars" in df.columns

    def fn(batches):
        for b in batches:
            marks_col = b.column(MARKS)
            removed = [0] * b.num_rows
            cols = {n: b.column(n) for n in names if n != REMOVED_CHARS}
            if marks_col.null_count < b.num_rows:   # only batches with marks are touched in Python
                texts, reasons, details = (b.column(c).to_pylist() for c in ("text", REASON, DETAILS))
                chars = b.column("text_chars").to_pylist() if has_chars else None
                for i, marks in enumerate(marks_col.to_pylist()):
                    if not marks:
                        continue
                    acc["marked_windows"].add(len(marks))
                    new, verdict = cut_repeats(texts[i], marks, k, tok, min_chars, min_tokens)
                    removed[i] = verdict.scores["exact_removed_chars"]
                    acc["removed_chars"].add(removed[i])
                    if verdict.keep:
                        texts[i] = new
                        if chars is not None:
                            chars[i] = len(new)
                    else:
                        reasons[i] = verdict.reason
                        details[i] = json.dumps(verdict.scores, sort_keys=True)
                cols["text"] = pa.array(texts, b.schema.field("text").type)
                cols[REASON] = pa.array(reasons, pa.string())
                cols[DETAILS] = pa.array(details, pa.string())
                if chars is not None:
                    cols["text_chars"] = pa.array(chars, b.schema.field("text_chars").type)
            cols[REMOVED_CHARS] = pa.array(removed, pa.int64())
            yield pa.RecordBatch.from_arrays([cols[n] for n in names], names=names)

    return df.mapInArrow(fn, StructType(out_fields))


def plan(df, cfg: DedupExactConfig, acc, checkpoints: Checkpoints, prior=None):
    """The whole stage as one DataFrame: rows with ``_reason`` null are kept. ``prior``: (catalog, storage) of the
    cross-release index, checked before the in-dataset step of the same kind; the prepared rows are then cut once
    through ``checkpoints`` (``pipeline.core.connected_components.Checkpoints``, which the caller closes), and the
    rows the URL and document steps marked are cut once before the substring step (see below)."""
    from pyspark.sql import functions as F

    df = prepare(df, cfg, acc)
    df = df.withColumn(REASON, F.lit(None).cast("string")).withColumn(DETAILS, F.lit(None).cast("string"))
    df = df.withColumn(LIVE, F.lit(True))
    if prior is not None:
        from pipeline.core.prior_index import mark_exact
        df = checkpoints.cut(df, "prepared")  # prepared once: the bucket lookups and the steps below all read it
        catalog, store = prior
        cols = dict(live=LIVE, reason_col=REASON, details_col=DETAILS)
    if cfg.url_dedup:
        if prior is not None:
            url_key = F.unhex(F.substring(F.sha2(F.col(URL_KEY), 256), 1, 32))
            df = mark_exact(df, catalog, store, kind="url", key_expr=url_key, reason="duplicate_url_prior",
                            extra={"url_key": F.col(URL_KEY)}, **cols)
        df = _mark_duplicates(df, URL_KEY, "duplicate_url", keep_order(df, cfg.url_keep), {"url_key": F.col(URL_KEY)})
    if cfg.doc_dedup:
        if prior is not None:
            df = mark_exact(df, catalog, store, kind="doc", key_expr=F.col(TEXT_HASH), reason="duplicate_text_prior",
                            **cols)
        df = _mark_duplicates(df, TEXT_HASH, "duplicate_text", keep_order(df, cfg.url_keep), {})
    if not cfg.substring_dedup:
        return df.drop(*INTERNAL).withColumn(REMOVED_CHARS, F.lit(0).cast("long"))
    # Three parts of the plan below read these rows (the windows, the join with their marks, the removed documents)
    # and each prunes other columns, so Spark would not share the steps above between them: every document would
    # be read, keyed and shuffled through the URL and document windows three times. They are cut once here. With
    # neither step (nor a prior index) no shuffle comes before: re-reading and re-keying costs less than a cut
    # (measured: the same time, 18% more shuffle with it, and on a cluster a copy of the corpus in storage).
    if cfg.url_dedup or cfg.doc_dedup or prior is not None:
        df = checkpoints.cut(df, "marked")
        if prior is not None:
            checkpoints.drop("prepared")  # read only by the steps above, now done
    live, dead = df.where(F.col(LIVE)), df.where(~F.col(LIVE))
    # The documents cut into windows are first spread over 1/CUT_TASK_PARTITIONS of the stage's shuffle partitions
    # (which are sized from the bytes of the window shuffle), so each task that cuts them writes a fixed budget of
    # windows: CUT_TASK_PARTITIONS partitions' worth, which its sorter spills past its memory. Left to the previous
    # shuffle, AQE had coalesced the documents to the advisory size of *document* bytes, and a task wrote ~24x that
    # in windows, growing with the number of partitions (bench/scaling.py: a 46 MB task at 48k pages against 31 MB
    # at 6k). An explicit partition count is never coalesced. This shuffles the live documents once more (+6% of
    # the stage's shuffle bytes at 48k pages); map tasks x partitions, the shuffle's block count, stays at N^2/8. The join below
    # keeps AQE's coalesced partitions, so output parts keep their size.
    n = int(live.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    spread = live.repartition(max(live.sparkSession.sparkContext.defaultParallelism, n // CUT_TASK_PARTITIONS), K1, K2)
    marks = marked_windows(window_rows(spread, cfg.k, cfg.tokenizer, acc, cfg.hash_bits))
    cut = apply_cuts(live.join(marks, [K1, K2], "left"), cfg, acc)
    dead = dead.withColumn(REMOVED_CHARS, F.lit(0).cast("long"))
    return cut.drop(*INTERNAL).unionByName(dead.drop(*INTERNAL))


def _task_peak_memory(store, stage_id: int, attempt: int) -> int:
    """The largest peak execution memory of one task of a Spark stage (the status store's task list)."""
    tasks = store.taskList(stage_id, attempt, 2 ** 31 - 1)
    peak = 0
    for i in range(tasks.size()):
        m = tasks.apply(i).taskMetrics()
        if m.isDefined():
            peak = max(peak, int(m.get().peakExecutionMemory()))
    return peak


def shuffle_metrics(sc, group: str, wait_s: float = 10.0) -> dict:
    """Shuffle bytes/records, spill and peak execution memory of the Spark stages of one job group:
    ``peak_execution_memory`` is the largest stage's (its tasks' peaks summed, as Spark's status store keeps it),
    ``task_peak_execution_memory`` the largest of one task (what flat memory per task is checked on)."""
    tracker = sc.statusTracker()
    store = sc._jsc.sc().statusStore()
    stage_ids = sorted({s for j in tracker.getJobIdsForGroup(group) for s in tracker.getJobInfo(j).stageIds})
    out = {"shuffle_write_bytes": 0, "shuffle_write_records": 0, "shuffle_read_bytes": 0, "spill_disk_bytes": 0,
           "peak_execution_memory": 0, "task_peak_execution_memory": 0, "spark_stages": 0}
    deadline = time.time() + wait_s
    for sid in stage_ids:
        info = tracker.getStageInfo(sid)
        attempt = info.currentAttemptId if info else 0
        while True:  # the status store is fed asynchronously by the listener bus
            try:
                sd = store.stageAttempt(sid, attempt, False, None, False, None)._1()
            except Exception:
                sd = None
                break
            if str(sd.status()) in ("COMPLETE", "SKIPPED", "FAILED") or time.time() > deadline:
                break
            time.sleep(0.1)
        if sd is None or str(sd.status()) == "SKIPPED":
            continue
        out["spark_stages"] += 1
        out["shuffle_write_bytes"] += int(sd.shuffleWriteBytes())
        out["shuffle_write_records"] += int(sd.shuffleWriteRecords())
        out["shuffle_read_bytes"] += int(sd.shuffleReadBytes())
        out["spill_disk_bytes"] += int(sd.diskBytesSpilled())
        out["peak_execution_memory"] = max(out["peak_execution_memory"], int(sd.peakExecutionMemory()))
        out["task_peak_execution_memory"] = max(out["task_peak_execution_memory"],
                                                _task_peak_memory(store, sid, sd.attemptId()))
    return out


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.dedup_exact
    check_tokenizer(cfg.tokenizer)
    prior = None
    if cfg.prior_index:  # before any work: a catalog made with other URL / hash rules fails here
        from pipeline.core.prior_index import load_checked
        prior = (load_checked(ctx.store, cfg.prior_index, ctx.cfg, ("url", "doc")), ctx.store)
    sc = ctx.spark.sparkContext
    acc = accumulators(sc)
    group = f"mdr-dedup_exact-{secrets.token_hex(4)}"
    sc.setJobGroup(group, f"mdr dedup_exact: {len(ctx.input.parts)} parts")
    checkpoints = stage_checkpoints(ctx)
    try:
        df = plan(read_dataframe(ctx), cfg, acc, checkpoints, prior)
        params = {"k": cfg.k, "tokenizer": cfg.tokenizer, "hash_bits": cfg.hash_bits, "stride": 1,
                  "min_chars_after_cut": cfg.min_chars_after_cut, "min_tokens_after_cut": cfg.min_tokens_after_cut,
                  "steps": [s for s, on in (("url", cfg.url_dedup), ("doc", cfg.doc_dedup),
                                            ("substring", cfg.substring_dedup)) if on],
                  "name": f"{cfg.k}k_{cfg.tokenizer}_{cfg.hash_bits}b_s1"}
        if prior is not None:
            params["prior_index"] = cfg.prior_index
        result = write_dataframe(ctx, df, params=params)
    finally:
        checkpoints.close()
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    stats = {n: a.value for n, a in acc.items()}
    stats["text_bytes"] = sum(stats["text_bytes"].values())
    stats.update(shuffle_metrics(sc, group))
    file_bytes = ctx.input.bytes or 0  # the parts' sizes, from the manifest (or one listing of an external input)
    stats["input_file_bytes"] = file_bytes
    stats["window_shuffle_bytes_raw"] = stats["windows"] * window_row_bytes(cfg.hash_bits)
    gb = 1e9
    if stats["text_bytes"]:
        stats["shuffle_bytes_per_input_text_gb"] = round(stats["shuffle_write_bytes"] / stats["text_bytes"] * gb)
    if file_bytes:
        stats["shuffle_bytes_per_input_file_gb"] = round(stats["shuffle_write_bytes"] / file_bytes * gb)
    result.stats.update(stats)
    return result


# shuffle_factor: 21.3 bytes of shuffle per byte of input parts on bench/scaling.py's 6,000 pages (window hashes, ~10
# per byte of text, and the rows themselves), with a margin; the manifest's shuffle_bytes_per_input_file_gb says
# what a run really shuffled
SPEC = StageSpec("dedup_exact", ("dedup_exact",), resolve_input, run, logic_version=1, shuffle_factor=32.0)
