"""Benchmark: exact-substring dedup in Spark vs a single-process Python reference, on the same documents.

Documents are built from the real text in ../shared/data/text/ (Wikipedia articles, two Gutenberg
books): random sentences with one word in ten swapped for another corpus word, so that natural
repeats of k tokens are rare, plus planted repeats: 30% of documents carry a boilerplate passage
(60-150 real words) shared with other documents, 2% carry one twice. For each size (default 20k
and 40k documents) it prints tokens/s per core, shuffle bytes per input byte, peak memory and the
time growth ratio, for the Spark stage (local[N]) and for the reference (one process, regex tokens,
a set of window hashes), and checks both kept the same text.

    python bench/exact_dedup.py [--docs 20000 40000] [--k 50] [--cores 2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.proctree import mem_kb  # noqa: E402
TEXT_DIR = ROOT.parent / "shared" / "data" / "text"


# --------------------------------------------------------------------------- data

def sentence_pool() -> list[list[str]]:
    """Sentences (as word lists) of the real texts."""
    sents = []
    for f in sorted(TEXT_DIR.glob("*.txt")):
        text = f.read_text(encoding="utf-8", errors="replace")
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if para.startswith("="):   # wikitext headings
                continue
            for s in re.split(r"(?<=[.!?])\s+", para):
                words = s.split()
                if len(words) >= 4:
                    sents.append(words)
    return sents


def build_docs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    pool = sentence_pool()
    vocab = [w for s in pool for w in s]
    passages = []
    while len(passages) < 300:
        i = rng.randrange(len(pool))
        words: list[str] = []
        while len(words) < 60 and i < len(pool):
            words += pool[i]
            i += 1
        if 60 <= len(words) <= 150:
            passages.append(" ".join(words))
    docs = []
    for d in range(n):
        sents = []
        for _ in range(rng.randint(4, 12)):
            s = [w if rng.random() > 0.1 else rng.choice(vocab) for w in rng.choice(pool)]
            sents.append(" ".join(s))
        r = rng.random()
        if r < 0.3:
            sents.insert(rng.randint(0, len(sents)), rng.choice(passages))
        if r < 0.02:  # the same passage twice in one document
            p = rng.choice(passages)
            sents.insert(rng.randint(0, len(sents)), p)
            sents.insert(rng.randint(0, len(sents)), p)
        text = ""
        for i, s in enumerate(sents):
            text += s + ("\n\n" if i % 4 == 3 else " ")
        docs.append({"id": f"b{seed}-{d:07d}", "url": None, "text": text.strip()})
    return docs


# --------------------------------------------------------------------------- the reference

def python_reference(docs: list[dict], k: int, tokenizer: str, min_chars: int, min_tokens: int) -> dict:
    """Single process: regex tokens, a set of hash(k-token tuple), same order and cutting as the stage."""
    from udfs.exact_substring import cut_repeats, doc_order_key, tokens_regex
    seen: set[int] = set()
    out = {}
    tokens = 0
    for d in sorted(docs, key=lambda d: doc_order_key(d["id"], d["text"])):
        text = d["text"]
        toks = [text[a:b] for a, b in tokens_regex(text, tokenizer)]
        tokens += len(toks)
        marks = []
        for p in range(len(toks) - k + 1):
            h = hash(tuple(toks[p:p + k]))
            if h in seen:
                marks.append(p)
            else:
                seen.add(h)
        new, verdict = cut_repeats(text, marks, k, tokenizer, min_chars, min_tokens)
        out[d["id"]] = (verdict.reason, verdict.scores["exact_removed_chars"], digest(new) if verdict.keep else None)
    return {"docs": out, "tokens": tokens}


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def reference_child(n: int, k: int, out: str) -> None:
    """Runs in its own process, so its peak memory is its own."""
    from pipeline.core.config import DedupExactConfig
    c = DedupExactConfig()
    docs = build_docs(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, cpu0 = time.perf_counter(), time.process_time()
    res = python_reference(docs, k, c.tokenizer, c.min_chars_after_cut, c.min_tokens_after_cut)
    res["seconds"] = time.perf_counter() - t0
    res["cpu_seconds"] = time.process_time() - cpu0
    res["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    res["rss_before_bytes"] = base * 1024
    Path(out).write_text(json.dumps(res))


# --------------------------------------------------------------------------- measuring

class TreeUsage:
    """Peak resident memory and CPU seconds of this process and its descendants (driver, JVM, Python workers).

    The machine is shared, so wall time depends on the neighbours; CPU seconds do much less."""

    def __init__(self, every: float = 0.25) -> None:
        self.peak = self.peak_pss = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self.every = every

    @staticmethod
    def sample() -> tuple[int, float, int]:
        """(resident bytes, CPU seconds incl. reaped children, proportional bytes) summed over the process tree.
        RSS counts the pages that forked Python workers share once per process; PSS splits them between them."""
        parent: dict[int, int] = {}
        usage: dict[int, tuple[int, int]] = {}
        page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parent[int(p)] = int(fields[1])
                usage[int(p)] = (int(fields[21]) * page, sum(int(x) for x in fields[11:15]))
            except (OSError, IndexError, ValueError):
                continue
        children: dict[int, list[int]] = {}
        for pid, pp in parent.items():
            children.setdefault(pp, []).append(pid)
        rss, ticks, pss, todo = 0, 0, 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            r, t = usage.get(pid, (0, 0))
            rss, ticks = rss + r, ticks + t
            pss += mem_kb(pid)[1] * 1024
            todo.extend(children.get(pid, []))
        return rss, ticks / tick, pss

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            rss, _, pss = self.sample()
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)

    def __enter__(self) -> "TreeUsage":
        self.peak, self._cpu0, self.peak_pss = self.sample()
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        rss, cpu, pss = self.sample()
        self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
        self.cpu_seconds = cpu - self._cpu0


def run_spark(spark, cfg, docs: list[dict], work: Path, parts: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.core.dataset import read_dataset, read_rejects
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage

    inp, out = work / "in", work / "out"
    inp.mkdir(parents=True)
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    for p in range(parts):
        pq.write_table(pa.Table.from_pylist(docs[p::parts], schema=schema), inp / f"part-{p:03d}.parquet")
    with TreeUsage() as mem:
        t0 = time.perf_counter()
        manifest = run_stage(cfg, "dedup_exact", str(inp), str(out), spark=spark, force=True)
        seconds = time.perf_counter() - t0
    store = Storage(cfg.storage)
    got = {r["id"]: (None, r["exact_removed_chars"], digest(r["text"])) for r in read_dataset(store, str(out)).to_pylist()}
    for r in read_rejects(store, str(out)).to_pylist():
        got[r["id"]] = (r["reason"], json.loads(r["details"])["exact_removed_chars"], None)
    return {"seconds": seconds, "cpu_seconds": mem.cpu_seconds, "peak_rss_bytes": mem.peak,
            "peak_pss_bytes": mem.peak_pss, "manifest": manifest,
            "docs": got}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, nargs="+", default=[20_000, 40_000])
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--cores", type=int, default=2, help="Spark local[N]")
    ap.add_argument("--parts", type=int, default=16, help="input Parquet parts")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--driver-memory", default="4g",
                    help="spark.driver.memory (local mode: the whole Spark heap; the sort spills past it)")
    ap.add_argument("--_reference", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._reference is not None:
        reference_child(args._reference, args.k, args._out)
        return 0
    if not TEXT_DIR.exists():
        print(f"{TEXT_DIR} is absent: this benchmark needs the shared real text", file=sys.stderr)
        return 2

    from pipeline.core.config import load_config
    from pipeline.core.spark import get_spark
    cfg = load_config(None, [f"spark.master=local[{args.cores}]", f"spark.driver_memory={args.driver_memory}", "run.audit=none",
                             "dedup_exact.url_dedup=false", "dedup_exact.doc_dedup=false", f"dedup_exact.k={args.k}"])
    spark = get_spark(cfg)
    rows = []
    work_root = Path(tempfile.mkdtemp(prefix="mdr-bench-exact-"))
    try:
        # start-up (JVM, Python workers, code paths) is not part of any figure
        run_spark(spark, cfg, build_docs(300, seed=99), work_root / "warm-up", 4)
        for n in args.docs:
            ref_out = work_root / f"ref-{n}.json"
            subprocess.run([sys.executable, __file__, "--_reference", str(n), "--k", str(args.k), "--_out", str(ref_out)],
                           check=True)
            ref = json.loads(ref_out.read_text())
            docs = build_docs(n)
            sp = run_spark(spark, cfg, docs, work_root / f"spark-{n}", args.parts)
            st = sp["manifest"]["stats"]
            same = {k: tuple(v) for k, v in ref["docs"].items()} == sp["docs"]
            c = sp["manifest"]["counts"]
            rows.append({
                "docs": n, "tokens": st["tokens"], "text_bytes": st["text_bytes"],
                "spark_seconds": round(sp["seconds"], 2),
                "spark_tokens_per_s_per_core": round(st["tokens"] / sp["seconds"] / args.cores),
                "spark_cpu_seconds": round(sp["cpu_seconds"], 2),
                "spark_tokens_per_cpu_s": round(st["tokens"] / sp["cpu_seconds"]),
                "ref_seconds": round(ref["seconds"], 2),
                "ref_tokens_per_s_per_core": round(ref["tokens"] / ref["seconds"]),
                "ref_cpu_seconds": round(ref["cpu_seconds"], 2),
                "ref_tokens_per_cpu_s": round(ref["tokens"] / ref["cpu_seconds"]),
                "shuffle_write_bytes": st["shuffle_write_bytes"],
                "shuffle_bytes_per_input_text_byte": round(st["shuffle_write_bytes"] / st["text_bytes"], 3),
                "shuffle_bytes_per_input_file_byte": round(st["shuffle_write_bytes"] / st["input_file_bytes"], 3),
                "spark_peak_rss_mb": round(sp["peak_rss_bytes"] / 2 ** 20),
                "spark_peak_pss_mb": round(sp["peak_pss_bytes"] / 2 ** 20),
                "spark_peak_execution_memory_mb": round(st["peak_execution_memory"] / 2 ** 20, 1),
                "ref_peak_rss_mb": round(ref["peak_rss_bytes"] / 2 ** 20),
                "removed_chars_share": round(st["removed_chars"] / max(1, sum(len(d["text"]) for d in docs)), 4),
                "dropped": c["removed"].get("exact_substring_removed", 0),
                "same_output": same,
            })
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
        spark.stop()

    print(f"\nexact-substring dedup, k={args.k}, Spark local[{args.cores}] (driver memory {args.driver_memory}) vs one Python process "
          f"(machine shared with other jobs: absolute figures are noisy)")
    head = ("docs", "tokens", "spark s", "spark tok/s/core", "spark tok/cpu-s", "ref s", "ref tok/s/core",
            "ref tok/cpu-s", "shuffle B/text B", "spark peak RSS MB", "spark peak PSS MB", "ref peak RSS MB", "same")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(r[x]) for x in (
            "docs", "tokens", "spark_seconds", "spark_tokens_per_s_per_core", "spark_tokens_per_cpu_s", "ref_seconds",
            "ref_tokens_per_s_per_core", "ref_tokens_per_cpu_s", "shuffle_bytes_per_input_text_byte",
            "spark_peak_rss_mb", "spark_peak_pss_mb", "ref_peak_rss_mb", "same_output")))
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        size = b["docs"] / a["docs"]
        growth = {"docs_ratio": size,
                  "spark_time_growth": round(b["spark_seconds"] / a["spark_seconds"], 2),
                  "ref_time_growth": round(b["ref_seconds"] / a["ref_seconds"], 2),
                  "spark_cpu_growth": round(b["spark_cpu_seconds"] / a["spark_cpu_seconds"], 2),
                  "ref_cpu_growth": round(b["ref_cpu_seconds"] / a["ref_cpu_seconds"], 2),
                  "shuffle_growth": round(b["shuffle_write_bytes"] / a["shuffle_write_bytes"], 2),
                  "spark_peak_rss_growth": round(b["spark_peak_rss_mb"] / a["spark_peak_rss_mb"], 2),
                  "spark_peak_pss_growth": round(b["spark_peak_pss_mb"] / a["spark_peak_pss_mb"], 2),
                  "ref_peak_rss_growth": round(b["ref_peak_rss_mb"] / a["ref_peak_rss_mb"], 2)}
        print("growth " + json.dumps(growth))
        rows.append({"growth": growth})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r.get("same_output", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
