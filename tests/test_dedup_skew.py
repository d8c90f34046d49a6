"""Hot keys of the dedup windows: rows without a key must not all meet in one task.

A URL-less external dataset (JSONL files with only a ``text`` column) goes through dedup_exact's URL window
over several input partitions; every row is tagged with ``spark_partition_id()`` right after the window (no
shuffle follows it when the other steps are off), so the count of rows per window partition is exact and
deterministic. Adaptive execution's coalescing of small shuffle partitions is switched off while measuring:
on a test-sized input it would merge every partition into one whatever the keys.
"""
from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from types import SimpleNamespace

from pipeline.core.connected_components import Checkpoints
from pipeline.core.dataset import open_input, read_part
from pipeline.core.sparkio import read_dataframe
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from pipeline.stages import dedup_exact
from tests.test_dedup_exact_stage import stage_results
from udfs.exact_reference import reference_dedup

PARTS, PER_PART, SHUFFLE_PARTITIONS = 4, 120, 8


@contextmanager
def spark_conf(spark, **conf):
    saved = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def text_only_dataset(root, texts_of) -> str:
    """PARTS JSONL files of PER_PART documents with only a ``text`` column; ``texts_of(part, i)`` gives each."""
    root.mkdir(parents=True, exist_ok=True)
    for p in range(PARTS):
        (root / f"docs-{p}.jsonl").write_text("".join(json.dumps({"text": texts_of(p, i)}) + "\n"
                                                      for i in range(PER_PART)))
    return str(root)


def window_partition_sizes(spark, cfg, uri: str) -> Counter:
    """Rows per partition of the plan's last window (the other steps off, so nothing shuffles after it)."""
    from pyspark.sql import functions as F
    store = Storage(cfg.storage)
    ctx = SimpleNamespace(spark=spark, store=store, input=open_input(store, uri), cfg=cfg)
    acc = dedup_exact.accumulators(spark.sparkContext)
    with spark_conf(spark, **{"spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
                              "spark.sql.adaptive.coalescePartitions.enabled": "false"}):
        df = dedup_exact.plan(read_dataframe(ctx), cfg.dedup_exact, acc, Checkpoints())  # no cut: substring off
        # the reason column comes back too, so the window that decides it is not pruned from the plan
        rows = df.select(F.spark_partition_id().alias("p"), dedup_exact.REASON).collect()
    return Counter(r["p"] for r in rows)


def assert_fair(sizes: Counter, n: int, slack: float = 2.0) -> None:
    fair = n / SHUFFLE_PARTITIONS
    assert sum(sizes.values()) == n
    assert max(sizes.values()) <= slack * fair, f"one window task got {max(sizes.values())} of {n} rows: {sorted(sizes.items())}"


def test_url_window_spreads_documents_without_url(spark, cfg_factory, tmp_path):
    n = PARTS * PER_PART
    uri = text_only_dataset(tmp_path / "in", lambda p, i: f"document {p} {i} " + "word " * (i % 7))
    cfg = cfg_factory("dedup_exact.doc_dedup=false", "dedup_exact.substring_dedup=false")
    assert_fair(window_partition_sizes(spark, cfg, uri), n)


def test_url_less_dataset_output_unchanged(spark, cfg_factory, tmp_path):
    """The whole stage on the URL-less dataset: every verdict as the brute-force reference says, counts conserved
    (repeats across parts make text duplicates and shared spans)."""
    def text(p: int, i: int) -> str:
        if i % 4 == 0:
            return f"a repeated page number {i % 8} with the same words in every part"
        return f"shared opening line of every page here {i % 30} and then {'some' if i % 3 else 'other'} words {p}x{i}"
    uri = text_only_dataset(tmp_path / "in", text)
    cfg = cfg_factory("run.audit=full", "dedup_exact.k=4", "dedup_exact.min_tokens_after_cut=0")
    out = str(tmp_path / "out")
    run_stage(cfg, "dedup_exact", uri, out, spark=spark)
    got, manifest = stage_results(cfg, out)
    store = Storage(cfg.storage)
    docs = [r for p in open_input(store, uri).parts for r in read_part(store, p, ["id", "url", "text"], uri).to_pylist()]
    assert len(docs) == len(got) == PARTS * PER_PART and all(d["url"] is None for d in docs)
    assert got == reference_dedup(docs, cfg.dedup_exact)
    c = manifest["counts"]
    assert c["in"] == PARTS * PER_PART == c["kept"] + sum(c["removed"].values())
    assert c["removed"]["duplicate_text"] == PARTS * PER_PART // 4 - 2  # two distinct repeated pages
    assert sum(1 for r in got.values() if r.reason is None and r.removed_chars) > 100
