"""bench/scaling.py's cluster mode: `mdr run` on a Spark standalone cluster and a Ray cluster on this machine
(tests/clusters.py: a master and ``--workers`` worker JVMs of one core each, a Ray head and a second node), the
input WARCs and every stage's output on a moto S3 server behind a counting proxy (tests/s3server.py).

Per stage, from its manifest's time window [timings.started, timings.finished]:
- wall: the manifest's seconds;
- CPU: the whole process tree's CPU in the window (bench/proctree.py timeline: drivers, Spark daemons,
  executors and their Python workers, Ray's head, nodes and workers; the S3 server runs inside this process and
  is not counted);
- shuffle: Spark's event log (spark.eventLog.enabled, one file per run), "Shuffle Bytes Written" of the tasks
  that finished in the window (quality runs on Ray: none);
- largest part: the largest part or rejects file the manifest lists;
- largest task process: the largest PSS of one task process (one executor JVM, one Spark Python worker, one Ray
  worker) sampled in the window;
- Spark's memory per task: the event log's largest "Peak Execution Memory" of one task finishing in the window
  (what Spark's sorts, aggregations and joins held for that task) and the bytes spilled; the executor JVMs' heap
  after GC: the largest occupancy after a collection pause in their GC logs (-Xlog:gc) in the window. A JVM's PSS
  rises with the work it has done, because its heap grows lazily toward spark.executor.memory and is not given
  back; these two say whether a task needs more memory as the input grows;
- requests: every request the proxy forwarded in the window, by kind (GET, PUT, LIST, HEAD, POST, DELETE).
"""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import sys
from pathlib import Path

from bench import webgen
from bench.proctree import run_measured
from bench.warcs import ROOT
from tests.clusters import RayCluster, SparkStandalone
from tests.s3server import FaultyProxy, S3Server

BUCKET = "mdr-bench"


class Clusters:
    """The S3 server and its counting proxy, the Spark standalone cluster and the Ray cluster, started once for
    every size (their start-up is not part of any run's figures)."""

    def __init__(self, work: Path, workers: int, worker_memory: str, ray_nodes: int) -> None:
        import logging
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self.s3 = S3Server()
        self.s3.start()
        # the workers, executors and Ray nodes inherit the credentials from this environment
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="us-east-1")
        self.s3.make_bucket(BUCKET)
        self.proxy = FaultyProxy(self.s3.endpoint).start()
        self.spark = SparkStandalone(work / "spark", workers=workers, cores=1, memory=worker_memory)
        self.ray = RayCluster(nodes=ray_nodes, cpus=1)
        try:
            self.spark.start()
            self.ray.start()
        except BaseException:
            self.stop()
            raise

    def store(self, counted: bool = False):
        from pipeline.core.config import load_config
        from pipeline.core.storage import Storage
        endpoint = self.proxy.endpoint if counted else self.s3.endpoint
        return Storage(load_config(None, [f"storage.s3_endpoint={endpoint}"]).storage)

    def stop(self) -> None:
        self.ray.stop()
        self.spark.stop()
        self.proxy.stop()
        self.s3.stop()

# How the task-memory targets are measured (``--spark-conf`` overrides either):
# - 1 MB memory pages: Spark's execution memory is taken in pages (16 MB for a 1 GiB executor of one core), so a
#   task's peak moves in whole pages and growth under a page is invisible, growth of one page a 2x step;
# - the sort-based shuffle writer at every size: at most 200 partitions Spark writes a shuffle unsorted, one file
#   per partition, above that it sorts in execution memory, so crossing 200 partitions between two sizes showed as
#   a 2x step (dedup_exact, 56 -> 440 partitions); a crawl-scale run has thousands of partitions, so it sorts.
MEASURE_CONF = {"spark.buffer.pageSize": "1m", "spark.shuffle.sort.bypassMergeThreshold": "1"}


def upload(store, warc_dir: str, prefix: str) -> None:
    for p in sorted(Path(warc_dir).glob("*.warc.gz")):
        store.write_bytes(f"{prefix}/{p.name}", p.read_bytes())


def delete_prefix(c: Clusters, prefix: str) -> None:
    """Every object under s3://BUCKET/prefix (keeps the in-memory S3 server's size bounded between sizes)."""
    client = c.s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def task_metrics_by_window(event_dir: Path, windows: dict[str, tuple[float, float]]) -> dict[str, dict[str, int]]:
    """Per window, from the tasks (Spark event log, SparkListenerTaskEnd) finishing in it: shuffle bytes written
    (sum), the largest peak execution memory of one task, and bytes spilled to disk (sum)."""
    out = {w: {"shuffle": 0, "task_exec": 0, "spill": 0} for w in windows}
    # Spark 4 writes a folder per application (eventlog_v2_<app>/events_<n>_<app>, rolled files)
    for f in sorted(p for p in event_dir.rglob("*") if p.is_file() and p.name.startswith(("events_", "app-"))):
        with open(f) as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                e = json.loads(line)
                tm = e.get("Task Metrics") or {}
                t = e["Task Info"]["Finish Time"] / 1000
                for name, (t0, t1) in windows.items():
                    if t0 <= t <= t1:
                        o = out[name]
                        o["shuffle"] += (tm.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
                        o["task_exec"] = max(o["task_exec"], tm.get("Peak Execution Memory", 0))
                        o["spill"] += tm.get("Disk Bytes Spilled", 0)
    return out


_GC_PAUSE = re.compile(r"^\[(\d+)ms\].*Pause.* (\d+)M->(\d+)M\((\d+)M\)")


def heap_after_gc_by_window(gc_dir: Path, windows: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Per window, the largest heap occupancy (MB) of one executor JVM right after a GC pause in it
    (-Xlog:gc:file=...:timemillis lines such as "[1765000000000ms] GC(7) Pause Young (Normal) ... 310M->96M(1024M)")."""
    out = dict.fromkeys(windows, 0)
    for f in sorted(gc_dir.glob("gc-*.log*")):
        with open(f, errors="replace") as fh:
            for line in fh:
                m = _GC_PAUSE.match(line)
                if not m:
                    continue
                t, after = int(m.group(1)) / 1000, int(m.group(3))
                for name, (t0, t1) in windows.items():
                    if t0 <= t <= t1:
                        out[name] = max(out[name], after)
    return out


def run_size(c: Clusters, work: Path, n_pages: int, stages: list[str], args) -> dict:
    from bench.scaling import url_filter_sets
    per_warc = max(1, min(args.per_warc, -(-n_pages // (4 * args.workers))))
    info = webgen.build(work / f"input-{n_pages}", n_pages, args.seed, per_warc, quiet=True)
    inp, out = f"s3://{BUCKET}/input-{n_pages}", f"s3://{BUCKET}/out-{n_pages}"
    delete_prefix(c, f"out-{n_pages}/")
    upload(c.store(), info["warc_dir"], inp)
    events = work / f"events-{n_pages}"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    gc_logs = work / f"gc-{n_pages}"
    shutil.rmtree(gc_logs, ignore_errors=True)
    gc_logs.mkdir(parents=True)
    cfg_file = work / "cluster.yaml"
    conf = {"spark.executor.memory": args.executor_memory, "spark.ui.enabled": "false",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(), "spark.eventLog.compress": "false",
            "spark.executor.extraJavaOptions": f"-Xlog:gc:file={gc_logs}/gc-%p.log:timemillis",
            **MEASURE_CONF, **dict(kv.split("=", 1) for kv in args.spark_conf)}
    cfg_file.write_text("spark:\n  conf:\n" + "".join(f'    "{k}": "{v}"\n' for k, v in conf.items()))
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--config", str(cfg_file), "--input", inp, "--output", out,
           "--master", c.spark.master, "--ray-address", c.ray.address, "--stages", ",".join(stages),
           "--set", f"storage.s3_endpoint={c.proxy.endpoint}",
           "--set", f"run.target_part_bytes={int(args.target_part_mb * (1 << 20))}",
           "--set", f"run.shuffle_partition_bytes={int(args.shuffle_partition_mb * (1 << 20))}", *url_filter_sets()]
    for s in args.set:
        cmd += ["--set", s]
    print(f"  {n_pages:,} pages ({info['files']} WARC files) ...", end="", flush=True)
    m = run_measured(cmd, cwd=str(ROOT), env=c.spark.env, interval=args.interval, orphan_wait_s=0, timeline=True)
    if m.rc:
        print(f"\nmdr run failed (exit {m.rc}):\n{(m.stdout + m.stderr)[-4000:]}", file=sys.stderr)
        raise SystemExit(1)
    from pipeline.core.dataset import read_manifest
    from pipeline.run.runner import registry
    engines = {s: registry()[s].engine for s in stages}
    store = c.store()
    mans = {s: read_manifest(store, f"{out}/{s}") for s in stages}
    windows = {s: (man["timings"]["started"], man["timings"]["finished"]) for s, man in mans.items()}
    tasks = task_metrics_by_window(events, windows)
    heap = heap_after_gc_by_window(gc_logs, windows)
    per_stage = {}
    for s, man in mans.items():
        t0, t1 = windows[s]
        peaks = m.window_task_peak(t0, t1)
        # the stage's own task processes: Ray's workers for quality; the Spark executors (alive, idle, during
        # quality too) and their Python workers for the others
        py = peaks.get("ray_worker" if engines[s] == "ray" else "spark_py_worker", 0.0)
        jvm = 0.0 if engines[s] == "ray" else peaks.get("executor_jvm", 0.0)
        files = man["parts"] + man.get("rejects", [])
        spark_side = engines[s] != "ray"
        per_stage[s] = {"s": man["timings"]["seconds"], "cpu_s": m.window_cpu_s(t0, t1), "shuffle": tasks[s]["shuffle"],
                        "task_exec_mb": tasks[s]["task_exec"] / 2**20 if spark_side else 0.0,
                        "spill": tasks[s]["spill"] if spark_side else 0, "heap_gc_mb": heap[s] if spark_side else 0,
                        "largest_part": max((p["bytes"] for p in files), default=0), "py_pss_mb": py,
                        "jvm_pss_mb": jvm, "requests": c.proxy.requests_between(t0, t1),
                        "in": man["counts"]["in"], "kept": man["counts"]["kept"],
                        "out_bytes": sum(p["bytes"] for p in man["parts"]),
                        "partitions": (man.get("stats") or {}).get("shuffle_partitions")}
    total = {"s": m.wall_s, "cpu_s": m.window_cpu_s(m.started_at, m.ended_at),
             "shuffle": sum(v["shuffle"] for v in per_stage.values()),
             "largest_part": max(v["largest_part"] for v in per_stage.values()),
             "py_pss_mb": max(v["py_pss_mb"] for v in per_stage.values()),
             "jvm_pss_mb": max(v["jvm_pss_mb"] for v in per_stage.values()),
             "task_exec_mb": max(v["task_exec_mb"] for v in per_stage.values()),
             "spill": sum(v["spill"] for v in per_stage.values()),
             "heap_gc_mb": max(v["heap_gc_mb"] for v in per_stage.values()),
             "requests": c.proxy.requests_between(m.started_at, m.ended_at)}
    print(f" {m.wall_s:.1f} s", flush=True)
    if not args.keep:
        delete_prefix(c, f"out-{n_pages}/")
    delete_prefix(c, f"input-{n_pages}/")
    return {"pages": n_pages, "m": m, "stages": per_stage, "total": total, "info": info}


def growth(a: float, b: float, k: float) -> float:
    """Growth of a -> b per doubling, the sizes being k times apart."""
    import math
    return (b / a) ** (1 / math.log2(k)) if a > 0 and b > 0 else float("nan")


def report(runs: list[dict], args, snapshot: dict) -> int:
    """The per-stage table, growth per doubling, the issue's targets (PASS/FAIL) and the cost model; returns the
    number of failed targets."""
    names = list(runs[0]["stages"])
    mb = 1024 * 1024
    print("\n  per stage (wall: manifest; CPU: process tree in the stage's window; shuffle: Spark event log; largest "
          "part: manifest; largest task process, PSS: one Python worker (Spark's, or Ray's for quality) and one "
          "executor JVM; Spark task MB: the largest peak execution memory of one task (event log); heap after GC: "
          "the largest executor heap occupancy after a GC pause (GC log); spill: bytes spilled to disk; requests: "
          "through the S3 proxy)")
    print(f"  {'pages':>7s} {'stage':>12s} {'wall s':>8s} {'CPU s':>8s} {'shuffle MB':>10s} {'largest part MB':>15s} "
          f"{'py task MB':>10s} {'executor MB':>11s} {'Spark task MB':>13s} {'heap after GC':>13s} {'spill MB':>8s} "
          f"{'requests':>9s}")
    for r in runs:
        for s in names + ["total"]:
            v = r["total"] if s == "total" else r["stages"][s]
            print(f"  {r['pages']:7,d} {s:>12s} {v['s']:8.1f} {v['cpu_s']:8.1f} {v['shuffle'] / mb:10.2f} "
                  f"{v['largest_part'] / mb:15.2f} {v['py_pss_mb']:10.0f} {v['jvm_pss_mb'] or float('nan'):11.0f} "
                  f"{v['task_exec_mb'] if v['jvm_pss_mb'] else float('nan'):13.1f} "
                  f"{v['heap_gc_mb'] or float('nan'):13.0f} {v['spill'] / mb:8.1f} {sum(v['requests'].values()):9,d}")
    print("\n  shuffle sizing (input MB: the previous stage's parts; partitions: the stage's spark.sql.shuffle.partitions "
          f"from input x its shuffle factor / run.shuffle_partition_bytes = {args.shuffle_partition_mb} MB; AQE merges "
          "small ones)")
    print(f"  {'pages':>7s} {'stage':>12s} {'input MB':>9s} {'shuffle MB':>10s} {'shuffle/input':>13s} {'partitions':>10s} "
          f"{'shuffle MB/partition':>20s}")
    for r in runs:
        prev = None
        for s in names:
            v = r["stages"][s]
            if prev is not None and v.get("partitions"):
                ratio = v["shuffle"] / prev if prev else float("nan")
                print(f"  {r['pages']:7,d} {s:>12s} {prev / mb:9.2f} {v['shuffle'] / mb:10.2f} {ratio:13.2f} "
                      f"{v['partitions']:10,d} {v['shuffle'] / mb / v['partitions']:20.2f}")
            prev = v.get("out_bytes")
    failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failed
        failed += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")

    print("\n  growth per doubling (wall, CPU)")
    for a, b in zip(runs, runs[1:]):
        k = b["pages"] / a["pages"]
        g = {s: growth(a["stages"][s]["s"], b["stages"][s]["s"], k) for s in names}
        print(f"  {a['pages']:,} -> {b['pages']:,}: total wall {growth(a['total']['s'], b['total']['s'], k):.2f}x, "
              f"CPU {growth(a['total']['cpu_s'], b['total']['cpu_s'], k):.2f}x; per stage wall: "
              + ", ".join(f"{s} {x:.2f}x" for s, x in g.items()))
    print("\n  targets")
    for a, b in zip(runs, runs[1:]):
        k = b["pages"] / a["pages"]
        for s in names + ["total"]:
            x, y = (a["total"], b["total"]) if s == "total" else (a["stages"][s], b["stages"][s])
            gw = growth(x["s"], y["s"], k)
            check(gw <= args.max_wall_growth, f"wall growth of {s} {a['pages']:,} -> {b['pages']:,}: {gw:.2f}x per "
                                              f"doubling (target <= {args.max_wall_growth}x)")
    first, last = runs[0], runs[-1]
    for s in names:
        # the Python workers hold the documents; Spark's own per-task memory is its execution memory (sort,
        # aggregation and join buffers), which its spill keeps under a fixed share of the heap
        for key, what, unit in (("py_pss_mb", "Python worker", "MB PSS"),
                                ("task_exec_mb", "Spark task's peak execution memory", "MB")):
            x, y = first["stages"][s][key], last["stages"][s][key]
            if not x and not y:
                continue
            g = y / x if x > 0 else float("nan")
            # a task that held under 1 MB at both sizes holds no per-document state worth a ratio
            ok = g <= args.max_task_memory_growth or (key == "task_exec_mb" and max(x, y) < 1)
            check(ok, f"largest {what} of {s} {first['pages']:,} -> {last['pages']:,}: {x:.1f} -> {y:.1f} {unit}, "
                      f"{g:.2f}x (target <= {args.max_task_memory_growth}x)")
    for s in names:
        x, y = first["stages"][s]["jvm_pss_mb"], last["stages"][s]["jvm_pss_mb"]
        if x and y:
            hx, hy = first["stages"][s]["heap_gc_mb"], last["stages"][s]["heap_gc_mb"]
            print(f"  info  executor JVM of {s} {first['pages']:,} -> {last['pages']:,}: PSS {x:.0f} -> {y:.0f} MB "
                  f"({y / x:.2f}x), heap after GC {hx:.0f} -> {hy:.0f} MB, spark.executor.memory {args.executor_memory}")
    print("  (an executor JVM's heap grows lazily up to spark.executor.memory and is not given back, so its PSS "
          "rises with the work it has done and is bounded by the configuration, not by the input; the targets "
          "are the task's own memory: the Python worker, which holds the documents, and Spark's execution memory "
          "for the task)")
    target = args.target_part_mb * mb
    for r in runs:
        big = max(r["stages"].items(), key=lambda kv: kv[1]["largest_part"])
        check(big[1]["largest_part"] <= target, f"largest part at {r['pages']:,} pages: {big[0]} "
                                                 f"{big[1]['largest_part'] / mb:.1f} MB (target <= {args.target_part_mb} MB)")
    cost_model(runs, args, snapshot)
    return failed


def cost_model(runs: list[dict], args, snapshot: dict) -> None:
    """Per Common Crawl snapshot, from the marginal cost between the two largest sizes."""
    if len(runs) < 2:
        print("\n  cost model: needs two sizes")
        return
    a, b = runs[-2], runs[-1]
    d = b["pages"] - a["pages"]
    n = args.snapshot_pages
    cores = args.workers  # Spark: one core per worker; Ray: args.workers nodes of one CPU (the same cores)
    print(f"\n  cost model per Common Crawl snapshot ({n:.3g} pages; default {snapshot['name']}, {snapshot['source']}),"
          f" from the marginal cost between {a['pages']:,} and {b['pages']:,} pages:")
    print(f"  {'stage':>12s} {'core-h (wall x cores)':>21s} {'CPU-h':>9s} {'shuffle TB':>10s} "
          f"{'requests (millions)':>40s}")
    negative = False
    for s in list(b["stages"]) + ["total"]:
        x, y = (a["total"], b["total"]) if s == "total" else (a["stages"][s], b["stages"][s])
        core_h = (y["s"] - x["s"]) * cores / d * n / 3600
        negative |= core_h < 0
        cpu_h = (y["cpu_s"] - x["cpu_s"]) / d * n / 3600
        tb = (y["shuffle"] - x["shuffle"]) / d * n / 1e12
        req = collections.Counter(y["requests"])
        req.subtract(x["requests"])
        reqs = ", ".join(f"{k} {v / d * n / 1e6:,.1f}" for k, v in sorted(req.items()) if v)
        print(f"  {s:>12s} {core_h:21,.0f} {cpu_h:9,.0f} {tb:10.2f} {reqs:>40s}")
    if negative:
        print("  (a negative figure: the larger run was not slower there; fixed costs or load from other work dominate "
              "at these sizes, and the model means nothing until the sizes are large enough)")
    print("  assumptions: cost grows linearly with pages at the marginal rate measured between the two largest sizes "
          "(fixed start-up costs cancel; a stage that grows faster than linearly is under-estimated by as much as "
          "its growth above 2.00x per doubling); pages like bench/webgen.py's (real HTML pages, ~90% English, with "
          f"exact and near copies), {args.per_warc} pages per WARC file and per-file request counts as here (a real "
          f"WARC holds ~{snapshot['pages'] / snapshot['warc_files']:,.0f} pages, so per-file requests are fewer per "
          "page there); core-hours = stage wall x the cluster's cores "
          f"({cores}, Spark and Ray sharing them), CPU-hours = the process tree's CPU; shuffle = Spark's shuffle "
          "write bytes (each byte is read once more); requests = what the pipeline sends to the object store "
          "(moto through a counting proxy), LIST = a GET of a bucket")
