"""Extraction job throughput vs trafilatura alone in a plain loop, on the same pages, in one run.

    python bench/extract_throughput.py --pages 10000

Input: ../shared/data/warc/news-articles-181.warc.gz copied into as many WARC files as needed to reach
--pages HTML pages (one Spark task per file). The job reads the WARCs, filters records, decodes, extracts
and writes Parquet; language ID (stage 3, folded into the same job) only with --langid. The job is
`mdr stage extract` in a fresh process, timed from launch to exit, so Spark's start-up is counted. The
baseline is trafilatura.extract with the same trafilatura settings on the same pages (already decoded, handed
over as strings, so trafilatura loads them its own way) in plain loops, without what udfs.main_text adds
(resiliparse's second opinion on thin pages, the boilerplate-line pass), so that their cost counts as the job's
overhead. The job's trafilatura is mdr's (the same text, faster: udfs.html_tree loads the page and skips an unused
tree copy, udfs.main_text reuses the options object, udfs.trafilatura_xpaths answers the costliest XPath
expressions with tree walks): that saving counts for the job, as it does for a user choosing between the two. So
that the pipeline's own cost stays visible, the stage's per-page function (udfs.main_text.main_text) also runs
in the same kind of loops, and the job is compared with it too. Loops:
one loop process per core, all at once, half of the copies before the job and half after it (so a change in
the machine's load weighs on both sides). Cores of a VM share caches,
memory bandwidth and the host, so one loop alone on an idle machine is not quite what each core gives when
all are busy: that figure is printed too, with the ceiling it implies. Target: the job's pages/s per core
within 15% of the loops' pages/s per core.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from codecs import BOM_UTF8
from pathlib import Path

import trafilatura

from bench.proctree import run_measured
from pipeline.core import task_gc
from bench.warcs import ROOT, html_pages, shared
from udfs.decode import decode_payload
from udfs.extract import ExtractSettings
from udfs.main_text import main_text, trafilatura_options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10000, help="HTML pages to extract (>= 5000 for the issue's figure)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="Spark local cores (local[N])")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--langid", action="store_true",
                    help="run language ID in the job too (stage 3's own work, ~0.7 ms a page, which the loop does not "
                         "do); off by default: the figure is the extraction job's overhead over trafilatura")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config for the job, e.g. extract.second_opinion_below_chars=800 (repeatable)")
    args = ap.parse_args()

    src = shared("warc", "news-articles-181.warc.gz")
    pages = html_pages(src)
    copies = math.ceil(args.pages / len(pages))
    total = copies * len(pages)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mdr-bench-"))
    inp = work / "warc"
    shutil.rmtree(work / "out", ignore_errors=True)
    inp.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        dst = inp / f"news-{i:04d}.warc.gz"
        if not dst.exists():
            _copy_with_own_ids(src, dst, i)
    print(f"input: {copies} WARC files x {len(pages)} HTML pages = {total:,} pages ({work})", flush=True)

    # the loops run in forked processes that inherit the decoded pages
    global _DECODED
    _DECODED = []
    for url, payload, ctype in pages:
        html, encoding = decode_payload(payload, ctype)
        exact = encoding == "utf-8" and "\ufffd" not in html and not payload.startswith(BOM_UTF8)
        _DECODED.append((url, html, payload if exact else None))  # the job hands main_text the bytes likewise
    cores = args.cores
    per_proc = max(1, copies // (2 * cores))  # copies each loop process does before the job, and again after it

    # the loops run half before and half after the job (the copies are the same pages), so a change in the
    # machine's load during the run weighs on both sides alike
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    before = loops(cores, per_proc)
    solo_before = loops(1, 1)
    own_before = loops(cores, max(1, per_proc // 2), own=True)

    # 1. the extract job, Spark start-up included; URL filter off (it has no lists here), language ID per --langid
    cmd = [sys.executable, "-m", "pipeline.cli", "stage", "extract", "--input", str(inp), "--output",
           str(work / "out"), "--master", f"local[{args.cores}]", "--set", "extract.url_filter.enabled=false",
           "--set", "extract.langid.languages=[]", "--set", f"extract.langid.enabled={str(args.langid).lower()}"]
    cmd += [x for kv in args.set for x in ("--set", kv)]
    print(f"job: extract settings: {' '.join(args.set) or 'the defaults'}")
    print(f"job: language ID {'on (identified, nothing dropped)' if args.langid else 'off (--langid turns it on)'}")
    m = run_measured(cmd, cwd=str(ROOT), interval=1.0)  # whole process tree: driver, JVM, Python workers
    job_s = m.wall_s
    if m.rc != 0:
        sys.exit(f"job failed:\n{m.stderr[-3000:]}")
    job_rate = total / job_s
    print(f"job:  {job_s:7.1f} s wall, {m.cpu_s:7.1f} s CPU (driver, JVM and Python workers), peak PSS "
          f"{m.peak_pss_mb:,.0f} MB, {job_rate:6.1f} pages/s on {args.cores} cores = {job_rate / args.cores:5.1f} "
          f"pages/s per core", flush=True)

    # 2. the rest of the loops
    after = loops(cores, per_proc)
    solo_after = loops(1, 1)
    own_after = loops(cores, max(1, per_proc // 2), own=True)
    own_rate = sum(n for n, _ in own_before + own_after) / (max(t for _, t in own_before) + max(t for _, t in own_after))
    par_rate = sum(n for n, _ in before + after) / (max(t for _, t in before) + max(t for _, t in after))
    solo_rate = sum(n for n, _ in solo_before + solo_after) / sum(t for _, t in solo_before + solo_after)
    print(f"loop, one per core at once ({cores} processes, {sum(n for n, _ in before + after):,} pages): "
          f"{par_rate:6.1f} pages/s in all = {par_rate / cores:5.1f} pages/s per core", flush=True)
    print(f"loop, alone on an idle machine (1 process, {sum(n for n, _ in solo_before + solo_after):,} pages): "
          f"{solo_rate:6.1f} pages/s; the cores slow each other: {cores} loops at once do "
          f"{par_rate / solo_rate:.2f}x one; load average at end: {os.getloadavg()[0]:.2f}", flush=True)

    ratio = job_rate / par_rate
    print(f"\njob pages/s per core / plain loop's pages/s per core (one loop per core at once) = {ratio:.3f}  "
          f"(overhead {100 * (1 - ratio):.1f}%; target: overhead <= 15%) -> {'MET' if ratio >= 0.85 else 'NOT MET'}")
    print(f"against one loop alone on the idle machine: {job_rate / cores / solo_rate:.3f} (the ceiling here, with "
          f"every core busy, is {par_rate / cores / solo_rate:.3f})")
    print(f"\nthe stage's own per-page function in the same kind of loops (udfs.main_text.main_text: trafilatura through "
          f"mdr's loading, options and tree walks, resiliparse's second opinion, the boilerplate lines; "
          f"{sum(n for n, _ in own_before + own_after):,} pages, the workers' GC settings): {own_rate / cores:5.1f} "
          f"pages/s per core, {own_rate / par_rate:.2f}x the pages/s of the stock trafilatura loop (with its extra work)")
    print(f"job / that loop = {job_rate / own_rate:.3f}: what reading the WARCs, decoding, the time limit, writing "
          f"Parquet and Spark cost on top of the extraction itself (overhead {100 * (1 - job_rate / own_rate):.1f}%)")


_DECODED: list[tuple[str, str, bytes | None]] = []


def _copy_with_own_ids(src: Path, dst: Path, copy: int) -> None:
    """The WARC with each WARC-Record-ID made unique to this copy (document ids must be unique in a dataset)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter
    with open(src, "rb") as f, open(dst, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for rec in ArchiveIterator(f):
            rid = rec.rec_headers.get_header("WARC-Record-ID")
            if rid:
                rec.rec_headers.replace_header("WARC-Record-ID", f"<urn:copy{copy}:{rid.strip('<>')}>")
            writer.write_record(rec)


def _loop(n_copies: int, own: bool = False) -> tuple[int, float]:
    """trafilatura alone as a user would call it (a decoded page in, its own loading), the job's trafilatura
    settings, the same pages, a plain loop in one process (mdr's trafilatura hooks are installed in this process but
    answer as stock trafilatura outside mdr's own calls, ~1 us a page). ``own``: the stage's per-page function
    instead (udfs.main_text.main_text, with the payload's bytes where the job hands them over), with the garbage
    collector set as the job's workers set it (pipeline.core.task_gc), so that the job/own ratio is the pipeline's
    own cost."""
    if own:
        task_gc.tune()
        task_gc.tune()  # both of a worker's first two tasks' steps: threshold, collect and freeze
    s = ExtractSettings()
    kw = trafilatura_options(s)
    t0 = time.perf_counter()
    n = 0
    for _ in range(n_copies):
        for url, html, utf8 in _DECODED:
            if own:
                main_text(html, url, s, utf8)
            else:
                trafilatura.extract(html, url=url, **kw)
            n += 1
    return n, time.perf_counter() - t0


def loops(procs: int, n_copies: int, own: bool = False) -> list[tuple[int, float]]:
    """``procs`` plain loops at once, one per process (forked, so they share the decoded pages)."""
    if procs == 1:
        return [_loop(n_copies, own)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        return pool.starmap(_loop, [(n_copies, own)] * procs)

if __name__ == "__main__":
    main()
