"""Part sizes and streaming reads: parts rotate at ``run.target_part_bytes`` and readers stream row groups, so a
task's memory does not grow with the input.

The memory test runs dedup_exact (read_dataframe, a shuffle, write_dataframe) and then filter (a per-part reader)
in a child process (Spark local mode) on an input of N documents and on one of 8N, the input parts 8x larger, and
measures the peak RSS of the largest Spark Python worker with ``bench.proctree`` (/proc).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path, read_manifest
from pipeline.core.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
TARGET = 1 << 20       # run.target_part_bytes of the memory test
SHUFFLE_TARGET = 4 << 20  # run.shuffle_partition_bytes of the memory test: the small input's shuffle is already larger
SMALL_DOCS = 8000      # ~2.4 KB of text each: ~19 MB of text; 8x: ~155 MB
INPUT_PARTS = 2        # the input as a shuffled stage left it: one part per partition, its size grows with the input


def bodies(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct texts of ~400 words from a 3,000-word vocabulary (compresses like prose, ~3x with zstd)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}{'abcdefgh'[i % 8] * (1 + i % 6)}" for i in range(3000)])
    lens = rng.integers(350, 450, n)
    words = vocab[rng.zipf(1.3, int(lens.sum())) % len(vocab)]
    out, at = [], 0
    for k in lens:
        out.append(" ".join(words[at:at + k].tolist()))
        at += k
    return out


def write_input(root: Path, n_docs: int, body: list[str]) -> None:
    """A committed dataset of INPUT_PARTS parts (row groups of 500 rows, as the writer of today's code leaves them)."""
    store, parts = Storage(), []
    per = n_docs // INPUT_PARTS
    for p in range(INPUT_PARTS):
        w = PartWriter(store, str(root), part_path(p, f"{p:08x}"), SCHEMA)
        for s in range(p * per, (p + 1) * per, 500):
            rows = range(s, min(s + 500, (p + 1) * per))
            w.write(pa.table({"id": [f"d{i:07d}" for i in rows], "url": [f"https://ex{i}.org/p" for i in rows],
                              "text": [f"doc {i} " + body[i % len(body)] for i in rows]}, schema=SCHEMA))
        parts.append(w.close())
    counts = Counts(n_docs, n_docs)
    commit(store, str(root), build_manifest(stage="input", config_hash="x", input_desc={}, parts=parts, rejects=[],
                                            schema=SCHEMA, counts=counts, failed_inputs=[], started=0.0))


CHILD = textwrap.dedent("""
    import sys
    from pipeline.core.config import load_config
    from pipeline.run.runner import run_stage
    src, out, target, shuffle = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    cfg = load_config(None, ["spark.master=local[2]", "spark.driver_memory=1g", f"run.target_part_bytes={target}",
                             f"run.shuffle_partition_bytes={shuffle}",
                             "dedup_exact.substring_dedup=false", "filter.repetition.enabled=false",
                             "filter.quality.enabled=false", "filter.lines.enabled=false"])
    run_stage(cfg, "dedup_exact", src, out + "/dedup_exact")
    run_stage(cfg, "filter", out + "/dedup_exact", out + "/filter")
""")


def measure(tmp: Path, n_docs: int, body: list[str]) -> tuple[float, dict]:
    from bench.proctree import run_measured
    src, out = tmp / f"in{n_docs}", tmp / f"out{n_docs}"
    write_input(src, n_docs, body)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    m = run_measured([sys.executable, "-c", CHILD, str(src), str(out), str(TARGET), str(SHUFFLE_TARGET)],
                     cwd=str(ROOT), env=env,
                     interval=0.05)
    assert m.rc == 0, m.stderr[-3000:]
    store = Storage()
    mans = {s: read_manifest(store, str(out / s)) for s in ("dedup_exact", "filter")}
    return m.roles["spark_py_worker"]["single_rss_mb"], {"mans": mans, "out": out, "wall": m.wall_s}


def largest_row_group(path: Path) -> int:
    md = pq.ParquetFile(path).metadata
    return max((sum(md.row_group(i).column(c).total_compressed_size for c in range(md.num_columns))
                for i in range(md.num_row_groups)), default=0)


def test_task_memory_stays_flat_while_the_input_grows_8x(tmp_path):
    body = bodies(SMALL_DOCS)
    small_mb, small = measure(tmp_path, SMALL_DOCS, body)
    big_mb, big = measure(tmp_path, 8 * SMALL_DOCS, body)
    print(f"peak RSS of the largest Spark Python worker: {small_mb:.0f} MB at {SMALL_DOCS:,} documents, "
          f"{big_mb:.0f} MB at {8 * SMALL_DOCS:,} ({small['wall']:.0f}s, {big['wall']:.0f}s)")
    for n, got in ((SMALL_DOCS, small), (8 * SMALL_DOCS, big)):
        for stage, man in got["mans"].items():
            assert man["counts"]["kept"] == n, (stage, man["counts"])
            for p in man["parts"]:
                slack = largest_row_group(got["out"] / stage / p["path"]) + (64 << 10)  # a row group and a footer
                assert p["bytes"] <= TARGET + slack, (stage, p)
    assert len(big["mans"]["filter"]["parts"]) >= 4 * len(small["mans"]["filter"]["parts"])
    assert big_mb <= 1.2 * small_mb, (small_mb, big_mb)
    # the dedup shuffle's partitions follow the data it shuffles (not the floor of 16), so one task's share and
    # its execution memory do not grow with the input (at a floor of 16 they grew 4-5x: bench/scaling.py)
    st = {n: got["mans"]["dedup_exact"]["stats"] for n, got in (("small", small), ("big", big))}
    print({n: {k: s[k] for k in ("shuffle_partitions", "shuffle_write_bytes", "task_peak_execution_memory")}
           for n, s in st.items()})
    assert st["small"]["shuffle_partitions"] > 16
    assert st["big"]["shuffle_partitions"] >= 7 * st["small"]["shuffle_partitions"]
    # Spark takes execution memory a page at a time (16 MB at this driver's size) and sorts within a shuffle
    # writer only past 200 partitions (below, it writes straight to files): at either size a task holds one or two
    # pages (a data page, and the sorter's pointer array when it sorts: 16.9 MB, and 16.9 or 33.8 MB from run to
    # run, measured); input parts read whole, 8x larger, gave 185 MB (11 pages) to one map task
    page = 16 << 20
    for n in ("small", "big"):
        assert st[n]["task_peak_execution_memory"] <= 2.1 * page, st[n]


def test_parts_rotate_at_the_target_and_keep_their_order(tmp_path):
    from pipeline.core.dataset import PART_NAME, RotatingPartWriter, read_dataset
    store, body = Storage(), bodies(3000, seed=3)
    table = pa.table({"id": [f"d{i:05d}" for i in range(3000)], "url": [None] * 3000, "text": body}, schema=SCHEMA)
    target = 256 << 10
    w = RotatingPartWriter(store, str(tmp_path), 7, "r0a1b2c3d-a0-9f8e7d", SCHEMA, target)
    for s in range(0, 3000, 1000):  # writes larger than a part: cut into row groups, rotated between them
        w.write(table.slice(s, 1000))
    parts = w.close()
    assert len(parts) >= 8
    names = [p.path for p in parts]
    assert names[0] == "part-00007-r0a1b2c3d-a0-9f8e7d.parquet" and names[1].endswith("_c001.parquet")
    assert names == sorted(names) and all(PART_NAME.match(n) and PART_NAME.match(n)["run"] == "0a1b2c3d" for n in names)
    for p in parts:
        # closed before a row group that would pass the target: over it by the size estimate's error at most
        assert p.bytes <= target * 1.02 + (8 << 10), (p, largest_row_group(tmp_path / p.path))
        assert pq.ParquetFile(tmp_path / p.path).metadata.num_row_groups >= 2
    assert sum(p.rows for p in parts) == 3000
    commit(store, str(tmp_path), build_manifest(stage="t", config_hash="x", input_desc={}, parts=parts, rejects=[],
                                                schema=SCHEMA, counts=Counts(3000, 3000), failed_inputs=[], started=0))
    assert read_dataset(store, str(tmp_path)).column("id").to_pylist() == table.column("id").to_pylist()
    rej = RotatingPartWriter(store, str(tmp_path), 7, "0123abcd", SCHEMA, target, rejects=True)
    rej.write(table.slice(0, 1000))
    got = [p.path for p in rej.close()]
    assert got[0] == "_rejects/part-00007-0123abcd.parquet" and got[2] == "_rejects/part-00007-0123abcd_c002.parquet"
    assert all(PART_NAME.match(g.split("/")[1]) for g in got)
    assert not PART_NAME.match("part-00000-0123abcd-c001.parquet")


def test_shuffle_partitions_follow_the_shuffled_bytes():
    from pipeline.core.spark import shuffle_partitions
    gb = 1 << 30
    assert shuffle_partitions(1024 * gb, 256 << 20, 16, 8) == 4096       # 1 TB at 256 MB: 4096, not 16
    assert shuffle_partitions(100 << 20, 256 << 20, 16, 8) == 16         # small input: the configured floor
    assert shuffle_partitions(100 << 20, 256 << 20, 16, 64) == 64        # every core of the cluster busy
    assert shuffle_partitions(None, 256 << 20, 4, 2) == 4
    assert shuffle_partitions(5 * gb + 1, gb, 1, 1) == 6


def test_streaming_reads_match_whole_reads_and_schemas_come_from_footers(tmp_path):
    """iter_part yields the same rows (row ranges, columns, external ids) as a whole read, a row group at a time;
    the schema of a dataset costs its footer, not its rows."""
    import tracemalloc
    from pipeline.core.dataset import iter_part, part_rows, read_part
    from pipeline.core.sparkio import input_schema
    store = Storage()
    n = 5000
    ext = pa.table({"text": [f"t{i} " + "x" * 3000 for i in range(n)], "n": list(range(n))})
    path = tmp_path / "ext" / "a.parquet"
    path.parent.mkdir()
    pq.write_table(ext, path, row_group_size=700)
    uri, root = str(path), str(tmp_path / "ext")
    whole = read_part(store, uri, root=root)
    assert whole.column_names == ["text", "n", "id", "url"] and whole.num_rows == n
    batches = list(iter_part(store, uri, ["id", "n"], root, batch_rows=300))
    assert max(b.num_rows for b in batches) <= 300
    assert pa.concat_tables(batches) == whole.select(["id", "n"])
    part = pa.concat_tables(iter_part(store, uri, ["id", "n"], root, rows=(1234, 3456)))
    assert part == whole.select(["id", "n"]).slice(1234, 3456 - 1234)
    assert part_rows(store, uri) == n
    tracemalloc.start()
    schema = input_schema(store, [uri])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert schema == whole.schema and peak < path.stat().st_size / 10, (peak, path.stat().st_size)


def test_task_reports_list_every_rotated_part_and_read_older_markers():
    from pipeline.core.stage import marker_parts
    a, b = {"path": "part-00001-0123abcd.parquet", "rows": 1, "bytes": 9}, {"path": "x_c001", "rows": 1, "bytes": 9}
    assert marker_parts({"parts": [a, b], "rejects": []}, "parts") == [a, b]
    assert marker_parts({"part": a, "rejects": b}, "parts") == [a] and marker_parts({"part": a, "rejects": b}, "rejects") == [b]
    assert marker_parts({"part": None, "rejects": None}, "parts") == [] == marker_parts({"part": None, "rejects": None}, "rejects")


def test_parts_larger_than_the_target_are_read_by_several_tasks():
    """A committed part over run.target_part_bytes is split into row ranges that cover its rows once, in order."""
    from pipeline.core.dataset import InputDataset
    inp = InputDataset("r", ["r/a", "r/b", "r/c"], 1010, "f", external=False, bytes=0,
                       part_sizes=[(1000, 10 << 20), (7, 3 << 20), (3, 100)])
    chunks = inp.chunks(1 << 20)
    a = [r for p, u, r in chunks if p == 0]
    assert len(a) == 10 and a[0] == (0, 100) and a[-1] == (900, 1000)
    assert all(x[1] == y[0] for x, y in zip(a, a[1:]))
    assert [r for p, _, r in chunks if p == 1] == [(0, 2), (2, 4), (4, 7)]
    assert [(p, u, r) for p, u, r in chunks if p == 2] == [(2, "r/c", None)]
    ext = InputDataset("r", ["r/x.parquet"], None, "f", external=True, bytes=10 << 30)
    assert ext.chunks(1 << 20) == [(0, "r/x.parquet", None)]
