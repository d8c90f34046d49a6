"""Extraction job throughput vs trafilatura alone in a plain loop, on the same pages, in one run.

    python bench/extract_throughput.py --pages 10000

Input: ../shared/data/warc/news-articles-181.warc.gz copied into as many WARC files as needed to reach
--pages HTML pages (one Spark task per file). The job reads the WARCs, filters records, decodes, extracts
and writes Parquet; language ID (stage 3, folded into the same job) only with --langid. The job is `mdr stage extract` in a fresh process,
timed from launch to exit, so Spark's start-up is counted. The loop calls trafilatura.extract with
the same settings on the same pages (already decoded) in one Python process, half of the copies before
the job and half after it, so a change in the machine's load weighs on both sides. Target: the job's
pages/s per core within 15% of the loop's pages/s.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.proctree import run_measured
from bench.warcs import ROOT, html_pages, shared
from udfs.decode import decode_payload
from udfs.extract import ExtractSettings, extract_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10000, help="HTML pages to extract (>= 5000 for the issue's figure)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="Spark local cores (local[N])")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--langid", action="store_true",
                    help="run language ID in the job too (stage 3's own work, ~0.7 ms a page, which the loop does not "
                         "do); off by default: the figure is the extraction job's overhead over trafilatura")
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
            shutil.copyfile(src, dst)
    print(f"input: {copies} WARC files x {len(pages)} HTML pages = {total:,} pages ({work})", flush=True)

    s = ExtractSettings()
    decoded = [(url, decode_payload(payload, ctype)[0]) for url, payload, ctype in pages]

    def loop(n_copies: int) -> tuple[int, float]:
        """trafilatura alone, same settings, same pages, one plain loop on one core."""
        t0 = time.perf_counter()
        n = 0
        for _ in range(n_copies):
            for url, html in decoded:
                extract_text(html, url, s)
                n += 1
        return n, time.perf_counter() - t0

    # the loop runs half before and half after the job (the copies are the same pages), so a change in the
    # machine's load during the run weighs on both sides alike
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    n1, s1 = loop(copies // 2)

    # 1. the extract job, Spark start-up included; URL filter off (it has no lists here), language ID per --langid
    cmd = [sys.executable, "-m", "pipeline.cli", "stage", "extract", "--input", str(inp), "--output",
           str(work / "out"), "--master", f"local[{args.cores}]", "--set", "extract.url_filter.enabled=false",
           "--set", "extract.langid.languages=[]", "--set", f"extract.langid.enabled={str(args.langid).lower()}"]
    print(f"job: language ID {'on (identified, nothing dropped)' if args.langid else 'off (--langid turns it on)'}")
    m = run_measured(cmd, cwd=str(ROOT), interval=1.0)  # whole process tree: driver, JVM, Python workers
    job_s = m.wall_s
    if m.rc != 0:
        sys.exit(f"job failed:\n{m.stderr[-3000:]}")
    job_rate = total / job_s
    print(f"job:  {job_s:7.1f} s wall, {m.cpu_s:7.1f} s CPU (driver, JVM and Python workers), peak PSS "
          f"{m.peak_pss_mb:,.0f} MB, {job_rate:6.1f} pages/s on {args.cores} cores = {job_rate / args.cores:5.1f} "
          f"pages/s per core", flush=True)

    # 2. the rest of the loop
    n2, s2 = loop(copies - copies // 2)
    loop_rate = (n1 + n2) / (s1 + s2)
    print(f"loop: {s1 + s2:7.1f} s wall, {loop_rate:6.1f} pages/s on 1 core (before the job {n1 / max(s1, 1e-9):.1f}, "
          f"after it {n2 / s2:.1f}); load average at end: {os.getloadavg()[0]:.2f}", flush=True)

    ratio = (job_rate / args.cores) / loop_rate
    print(f"\njob pages/s per core / loop pages/s = {ratio:.3f}  (overhead {100 * (1 - ratio):.1f}%; "
          f"target: overhead <= 15%) -> {'MET' if ratio >= 0.85 else 'NOT MET'}")


if __name__ == "__main__":
    main()
