"""The whole pipeline (`mdr run`, all five stages: four on Spark, quality on Ray) on growing inputs: wall time,
CPU, memory, growth per doubling, and the extrapolated cost of one Common Crawl snapshot.

    python -m bench.scaling --cluster                                   # 6k, 12k, 24k, 48k pages on clusters
    python -m bench.scaling --cluster --base-pages 300 --factors 1 2    # smoke run on clusters
    python -m bench.scaling --base-pages 2500                           # local[2]: 2,500, 5,000, 10,000 pages
    python -m bench.scaling --base-pages 300                            # smoke run, local

``--cluster`` (bench/scaling_cluster.py) (bench/scaling_cluster.py): a Spark standalone cluster (a master, ``--workers`` 1-core
worker JVMs) and a Ray cluster (as many 1-CPU nodes) on this machine, input and output on a moto S3 server
behind a counting proxy; per stage wall, CPU, shuffle bytes, largest part, the largest single task process,
object-store requests; the issue's targets checked (PASS/FAIL; exit 1 on a FAIL) and a cost model per snapshot
from the marginal cost between the two largest sizes. The rest of this docstring is the local mode.

Input: bench/webgen.py (real HTML pages of ../shared/data/warc replicated with exact copies, near-duplicates and
far edits), WARC files of ~500 pages. Each size runs `python -m pipeline.cli run --master local[CORES]` in a
fresh process (Spark start-up, Ray start-up, report and dataset card included), refinedweb preset plus the
shared UT1 blocklist and LDNOOBW word list; `--spark-only` leaves the quality stage (Ray) out. The process
tree is measured by bench/proctree.py: wall, CPU (every process, orphans included), peak RSS/PSS of the whole
tree, and per role the largest single process (the Spark JVM, one Spark Python worker, Ray processes). Each
stage's own time comes from its manifest.

Reference the figures are compared with: linear scaling, i.e. time x2.00 per doubling of the input.

Extrapolation to one Common Crawl snapshot. Assumed size: CC-MAIN-2024-51 (December 2024), 2.64 billion web
pages, 394 TiB uncompressed, per Common Crawl's announcement "December 2024 Crawl Archive Now Available"
(blog.commoncrawl.org/blog/december-2024-crawl-archive-now-available); the May 2024 crawl (CC-MAIN-2024-22)
was announced at about 2.7 billion pages. A snapshot is about 90,000 WARC files (100 segments; the length of
its warc.paths.gz listing; this figure was not re-checked offline), so ~29,000 pages a file. Core-hours are given three ways: (a) the largest run's cost per
page, fixed start-up costs included (pessimistic for big runs); (b) the marginal cost per page between the two
largest runs (fixed costs cancel: the best linear estimate); (c) (b)'s size raised to the measured growth
exponent between those runs, a bound for stages that grow faster than linearly (dedup shuffles), which from
inputs this small over-states the bill. Caveats: the input is ~90% English news pages of ~110 KB; a real
snapshot is ~45% English, and the language pre-screen skips most other pages before extraction, so (b) is an
upper bound for extract, while dedup on a cluster adds network shuffle this local run does not see.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import webgen
from bench.compare_datatrove import versions
from bench.proctree import run_measured
from bench.warcs import ROOT, SHARED

SNAPSHOT = {"name": "CC-MAIN-2024-51", "pages": 2.64e9, "tib": 394, "warc_files": 90_000,
            "source": "Common Crawl, 'December 2024 Crawl Archive Now Available' (blog.commoncrawl.org)"}
ALL_STAGES = ("extract", "filter", "dedup_fuzzy", "dedup_exact", "quality")


def url_filter_sets() -> list[str]:
    """--set options for the shared UT1 blocklist and LDNOOBW word list; none (with a note) where they are absent."""
    ut1, words = SHARED / "lists" / "ut1", SHARED / "lists" / "ldnoobw"
    if not (ut1.exists() and words.exists()):
        print(f"note: {ut1} or {words} is absent: the URL filter runs without the blocklist and word list",
              file=sys.stderr)
        return []
    return ["--set", f"extract.url_filter.blocklist_uri={ut1}", "--set", f"extract.url_filter.words_uri={words}"]


def run_size(work: Path, n_pages: int, args) -> dict:
    per_warc = max(1, min(args.per_warc, -(-n_pages // (4 * args.cores))))
    info = webgen.build(work / f"input-{n_pages}", n_pages, args.seed, per_warc, quiet=True)
    out = work / f"out-{n_pages}"
    shutil.rmtree(out, ignore_errors=True)
    stages = [s for s in ALL_STAGES if not (args.spark_only and s == "quality")]
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", info["warc_dir"], "--output", str(out),
           "--master", f"local[{args.cores}]", "--stages", ",".join(stages), *url_filter_sets()]
    for s in args.set:
        cmd += ["--set", s]
    print(f"  {n_pages:,} pages ({info['files']} WARC files) ...", end="", flush=True)
    m = run_measured(cmd, cwd=str(ROOT))
    if m.rc:
        print(f"\nmdr run failed (exit {m.rc}):\n{(m.stdout + m.stderr)[-4000:]}", file=sys.stderr)
        raise SystemExit(1)
    per_stage = {}
    for s in stages:
        man = json.loads((out / s / "_manifest.json").read_text())
        per_stage[s] = {"s": man["timings"]["seconds"], "in": man["counts"]["in"], "kept": man["counts"]["kept"]}
    print(f" {m.wall_s:.1f} s", flush=True)
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return {"pages": n_pages, "m": m, "stages": per_stage, "info": info}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster", action="store_true", help="a Spark standalone cluster and a Ray cluster, S3 "
                                                           "(bench/scaling_cluster.py) instead of local[--cores]")
    ap.add_argument("--base-pages", type=int, default=None, help="pages of the 1x input (default: 2500, 6000 with "
                                                                 "--cluster)")
    ap.add_argument("--factors", type=int, nargs="+", default=None, help="input sizes as multiples of --base-pages "
                                                                         "(default: 1 2 4, 1 2 4 8 with --cluster)")
    ap.add_argument("--cores", type=int, default=2, help="Spark local[N] (default 2; not with --cluster)")
    ap.add_argument("--workers", type=int, default=2, help="clusters: Spark workers of one core, and Ray nodes of "
                                                           "one CPU (default 2)")
    ap.add_argument("--worker-memory", default="2g", help="clusters: memory of each Spark worker (default 2g)")
    ap.add_argument("--executor-memory", default="1g", help="clusters: spark.executor.memory (default 1g)")
    ap.add_argument("--interval", type=float, default=0.5, help="clusters: seconds between process samples")
    ap.add_argument("--target-part-mb", type=float, default=16.0,
                    help="clusters: run.target_part_bytes in MB, and the largest part file allowed (default 16: "
                         "small enough that the bench's sizes rotate parts)")
    ap.add_argument("--shuffle-partition-mb", type=float, default=2.0,
                    help="clusters: run.shuffle_partition_bytes in MB (default 2: small enough that the dedup stages' "
                         "shuffle partition counts follow their data from the smallest size on, as 128 MB does at "
                         "crawl scale; at the default the bench's sizes would all sit at the floor of 16)")
    ap.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="clusters: extra Spark configuration (repeatable); by default the task-memory targets are "
                         "measured with spark.buffer.pageSize=1m (finer than whole 16 MB pages) and "
                         "spark.shuffle.sort.bypassMergeThreshold=1 (every size sorts its shuffles in execution "
                         "memory, as the thousands of partitions of a crawl-scale run do), which this overrides "
                         "(bench/scaling_cluster.py MEASURE_CONF)")
    ap.add_argument("--max-wall-growth", type=float, default=2.1, help="clusters: target wall growth per doubling")
    ap.add_argument("--max-task-memory-growth", type=float, default=1.2,
                    help="clusters: target growth of the largest task process, smallest to largest size")
    ap.add_argument("--per-warc", type=int, default=500, help="pages per WARC file (default 500)")
    ap.add_argument("--spark-only", action="store_true", help="leave the quality stage (Ray) out")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra mdr --set (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snapshot-pages", type=float, default=SNAPSHOT["pages"],
                    help=f"pages of the snapshot to extrapolate to (default {SNAPSHOT['pages']:.3g}, {SNAPSHOT['name']})")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep each run's output")
    args = ap.parse_args(argv)
    if args.base_pages is None:
        args.base_pages = 6000 if args.cluster else 2500
    if args.factors is None:
        args.factors = [1, 2, 4, 8] if args.cluster else [1, 2, 4]
    if args.cluster:
        return main_cluster(args)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="mdr-scaling-"))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; local[{args.cores}]; "
          f"work folder {work}")
    print(f"versions: {versions()}")
    stages = "extract, filter, dedup_fuzzy, dedup_exact" + ("" if args.spark_only else ", quality (Ray)")
    print(f"`mdr run` per size, stages {stages}; report and dataset card included\n")
    runs = [run_size(work, f * args.base_pages, args) for f in args.factors]
    print(f"  (input: {webgen.describe(runs[-1]['info'])})")

    print(f"\n  {'pages':>7s} {'wall s':>8s} {'CPU s':>8s} {'pages/s/core':>12s} {'peak RSS MB':>11s} {'peak PSS MB':>11s} "
          f"{'JVM PSS':>8s} {'1 Spark py worker':>18s} {'Ray PSS sum':>11s} {'kept':>7s}")
    for r in runs:
        m, roles = r["m"], r["m"].roles
        w = roles.get("spark_py_worker", {})
        last = list(r["stages"].values())[-1]["kept"]
        print(f"  {r['pages']:7,d} {m.wall_s:8.1f} {m.cpu_s:8.1f} {r['pages'] / m.wall_s / args.cores:12.2f} "
              f"{m.peak_rss_mb:11.0f} {m.peak_pss_mb:11.0f} {roles.get('spark_jvm', {}).get('single_pss_mb', 0):8.0f} "
              f"{w.get('single_pss_mb', 0):7.0f} PSS/{w.get('single_rss_mb', 0):4.0f} RSS "
              f"{roles.get('ray', {}).get('sum_pss_mb', 0):11.0f} {last:7,d}")
    print("  (JVM: the Spark driver JVM; one Spark py worker: the largest single Spark Python worker, PSS and RSS; "
          "Ray: all Ray processes together)")
    print("\n  seconds per stage (manifest timings; the rest of the wall time is start-up, planning, report):")
    names = list(runs[0]["stages"])
    print(f"  {'pages':>7s} " + " ".join(f"{s:>12s}" for s in names) + f" {'other':>8s}")
    for r in runs:
        st = r["stages"]
        other = r["m"].wall_s - sum(v["s"] for v in st.values())
        print(f"  {r['pages']:7,d} " + " ".join(f"{st[s]['s']:12.1f}" for s in names) + f" {other:8.1f}")

    print("\n  growth per doubling of the input (reference: linear = 2.00x time, memory flat or sub-linear)")
    for a, b in zip(runs, runs[1:]):
        k = b["pages"] / a["pages"]
        per = lambda x, y: (y / x) ** (1 / math.log2(k)) if x > 0 and y > 0 else float("nan")  # noqa: E731
        stage_g = ", ".join(f"{s} {per(a['stages'][s]['s'], b['stages'][s]['s']):.2f}x" for s in names)
        print(f"  {a['pages']:,} -> {b['pages']:,}: wall {per(a['m'].wall_s, b['m'].wall_s):.2f}x, CPU "
              f"{per(a['m'].cpu_s, b['m'].cpu_s):.2f}x, peak PSS {per(a['m'].peak_pss_mb, b['m'].peak_pss_mb):.2f}x "
              f"per doubling; per stage: {stage_g}")

    big, prev = runs[-1], runs[-2] if len(runs) > 1 else None
    n = args.snapshot_pages
    cs_avg = big["m"].wall_s * args.cores / big["pages"]
    print(f"\n  extrapolation to one Common Crawl snapshot: {n:.3g} pages (default {SNAPSHOT['name']}: "
          f"{SNAPSHOT['pages']:.3g} pages, {SNAPSHOT['tib']} TiB uncompressed, ~{SNAPSHOT['warc_files']:,} WARC files; "
          f"{SNAPSHOT['source']})")
    print(f"   (a) at the largest run's cost, {1e3 * cs_avg:.1f} core-ms per page: {n * cs_avg / 3600:,.0f} core-hours "
          f"(CPU time: {n * big['m'].cpu_s / big['pages'] / 3600:,.0f} CPU-hours)")
    if prev:
        d_pages = big["pages"] - prev["pages"]
        cs_marg = (big["m"].wall_s - prev["m"].wall_s) * args.cores / d_pages
        cpu_marg = (big["m"].cpu_s - prev["m"].cpu_s) / d_pages
        if cs_marg > 0:
            print(f"   (b) marginal cost between the two largest runs, {1e3 * cs_marg:.1f} core-ms per page: "
                  f"{n * cs_marg / 3600:,.0f} core-hours (CPU time: {n * cpu_marg / 3600:,.0f} CPU-hours)")
        else:
            print(f"   (b) marginal wall cost between the two largest runs is not positive ({1e3 * cs_marg:.1f} core-ms "
                  f"per page): the larger run was not slower, load on the machine or fixed costs dominate; by CPU time: "
                  f"{1e3 * cpu_marg:.1f} CPU-ms per page, {n * cpu_marg / 3600:,.0f} CPU-hours")
        expo = math.log(big["m"].wall_s / prev["m"].wall_s) / math.log(big["pages"] / prev["pages"])
        if cs_marg > 0 and expo > 1:
            bound = big["m"].wall_s * args.cores * (n / big["pages"]) ** expo / 3600
            print(f"   (c) growth exponent {expo:.2f} between them applied to the whole snapshot: {bound:,.3g} core-hours "
                  f"(an upper bound; at this size start-up costs still dominate, see the docstring)")
        else:
            print(f"   (c) growth exponent {expo:.2f} between the two largest runs: sub-linear (fixed costs dominate at "
                  f"this size), no super-linear bound to add")
        per_file = n / SNAPSHOT["warc_files"]
        if cs_marg > 0:
            print(f"   per WARC file (~{per_file:,.0f} pages): {per_file * cs_marg / 3600:.2f} core-hours by (b)")
    print("\n  smoke-sized inputs (a few thousand pages) are dominated by Spark/Ray start-up: only runs of 2,500+ pages "
          "per size give usable growth ratios")
    return 0


def main_cluster(args) -> int:
    from bench import scaling_cluster as sc
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mdr-scaling-cluster-"))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; work folder {work}")
    print(f"versions: {versions()}")
    print(f"clusters: Spark standalone, {args.workers} workers x 1 core ({args.worker_memory}, executors "
          f"{args.executor_memory}); Ray, {args.workers} nodes x 1 CPU; S3: moto behind a counting proxy")
    stages = [s for s in ALL_STAGES if not (args.spark_only and s == "quality")]
    print(f"`mdr run --master spark://... --ray-address ...` per size, stages {', '.join(stages)}\n")
    c = sc.Clusters(work, args.workers, args.worker_memory, args.workers)
    try:
        runs = [sc.run_size(c, work, f * args.base_pages, stages, args) for f in args.factors]
    finally:
        c.stop()
    print(f"  (input: {webgen.describe(runs[-1]['info'])})")
    failed = sc.report(runs, args, SNAPSHOT)
    print(f"\n  {failed} target(s) failed" if failed else "\n  every target met")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
