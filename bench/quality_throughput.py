"""Quality stage throughput: the Ray stage (actor pool) against a plain single-process loop, same model, same docs.

    python bench/quality_throughput.py [--docs 20000] [--actors 2] [--batch-size 512] [--embedding-docs 1000]

Both sides do the whole job: read the committed Parquet parts, score with the same fastText model,
split kept/removed at the threshold, and write Parquet. Ray start-up (``ray.init``) is timed apart and
reported apart, and so is the actor pool's start (job start -> first actor ready, from the actors'
clocks); "start-up excluded" docs/s count the documents scored once the whole pool is up (a unit straddling that
moment pro rata) over the time from then to the last finished unit; the figure counted from the first
ready actor on (so including the second actor's start) is printed beside it. Target: the Ray stage
at 2 actors reaches >= 1.6x the loop. With torch installed, the embedding backend's CPU docs/s is
measured too. Documents are built from real text in ../shared/data (Wikipedia, news, page boilerplate).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TARGET = 1.6


def make_documents(n: int, seed: int = 0) -> list[str]:
    """n documents of 200+ words (about 3 kB, as RefinedWeb's): windows of paragraphs from the demo model's real-text sets."""
    from pipeline.quality_training.data import build_sets
    pool = [r["text"].split("\n") for rows in build_sets(SHARED).values() for r in rows]
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        paras = rng.choice(pool)
        start = rng.randrange(len(paras))
        doc = "\n".join(paras[start:start + rng.randint(4, 16)])
        while len(doc.split()) < 200:
            doc += "\n" + "\n".join(rng.choice(pool)[:4])
        docs.append(doc)
    return docs


def write_dataset(root: str, docs: list[str], parts: int) -> None:
    """A committed dataset (manifest and parts), as an earlier stage would leave it."""
    from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path
    from pipeline.core.storage import Storage
    store = Storage()
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    infos, per = [], -(-len(docs) // parts)
    for p in range(parts):
        chunk = docs[p * per:(p + 1) * per]
        w = PartWriter(store, root, part_path(p, "bench"), schema)
        w.write(pa.table({"id": [f"doc{p * per + i:06d}" for i in range(len(chunk))],
                          "url": [f"https://example.org/{p}/{i}" for i in range(len(chunk))], "text": chunk},
                         schema=schema))
        infos.append(w.close())
    counts = Counts(len(docs), len(docs))
    commit(store, root, build_manifest(stage="bench_input", config_hash="bench", input_desc={}, parts=infos, rejects=[],
                                       schema=schema, counts=counts, failed_inputs=[], started=time.time()))


def plain_loop(input_root: str, out: str, model_uri: str | None, threshold: float, batch: int) -> tuple[int, float, set]:
    """The reference: one process reads each part, scores it in batches, writes kept rows and rejects."""
    from pipeline.core.dataset import open_input, read_part
    from pipeline.core.storage import Storage
    from udfs.quality import FastTextClassifier
    t0 = time.perf_counter()
    store = Storage()
    clf = FastTextClassifier.load(model_uri, "hq", True)
    os.makedirs(out, exist_ok=True)
    n, kept_ids = 0, set()
    for i, part in enumerate(open_input(store, input_root).parts):
        table = read_part(store, part)
        scores, labels = [], []
        texts = table.column("text").to_pylist()
        for off in range(0, len(texts), batch):
            s, lab = clf.score(texts[off:off + batch])
            scores.extend(s.tolist())
            labels.extend(lab)
        table = table.append_column("quality_score", pa.array(scores, pa.float64()))
        table = table.append_column("quality_label", pa.array(labels, pa.string()))
        mask = pc.greater_equal(table.column("quality_score"), threshold)
        kept = table.filter(mask)
        pq.write_table(kept, f"{out}/part-{i:05d}.parquet", compression="zstd")
        pq.write_table(table.filter(pc.invert(mask)).select(["id", "url", "quality_score"]),
                       f"{out}/rejects-{i:05d}.parquet", compression="zstd")
        kept_ids.update(kept.column("id").to_pylist())
        n += table.num_rows
    return n, time.perf_counter() - t0, kept_ids


def embedding_rate(docs: list[str], n: int) -> tuple[float, str] | None:
    try:
        import torch  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("embedding backend: skipped (torch/sentence-transformers not installed: pip install -e '.[embedding]')")
        return None
    import numpy as np
    from udfs.quality import EmbeddingClassifier, embed, head_dict, load_encoder, logistic_head
    enc = load_encoder(None, "cpu")
    x = embed(enc, docs[:64], normalize=True)
    w, b = logistic_head(x.astype(np.float64), np.arange(64) % 2 * 1.0, steps=50)
    clf = EmbeddingClassifier(enc, head_dict(w, b, ("cc", "hq"), True), "hq")
    sample = docs[64:64 + n]
    t0 = time.perf_counter()
    for off in range(0, len(sample), 256):
        clf.score(sample[off:off + 256])
    dt = time.perf_counter() - t0
    return len(sample) / dt, f"{torch.get_num_threads()} torch threads"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--model", default=None, help="fastText model URI (default: the bundled demo model)")
    ap.add_argument("--runs", type=int, default=3, help="Ray stage runs (the first one also starts Ray's workers)")
    ap.add_argument("--embedding-docs", type=int, default=1000, help="documents for the embedding backend (0: skip)")
    args = ap.parse_args(argv)
    if not SHARED.exists():
        print(f"{SHARED} is absent: the benchmark builds its documents from the shared real data", file=sys.stderr)
        return 2
    from pipeline.core.config import load_config
    from pipeline.core.dataset import read_dataset
    from pipeline.core.ray_session import init_ray
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    tmp = tempfile.mkdtemp(prefix="mdr-bench-quality-")
    try:
        docs = make_documents(args.docs)
        mb = sum(len(d.encode()) for d in docs) / 1e6
        print(f"documents: {len(docs):,} ({mb:.1f} MB of text, mean {mb * 1e6 / len(docs):,.0f} bytes) "
              f"in {args.parts} parts; CPUs on this machine: {os.cpu_count()} (shared with other work)")
        write_dataset(f"{tmp}/input", docs, args.parts)
        overrides = [f"ray.actors={args.actors}", f"ray.batch_size={args.batch_size}"]
        if args.model:
            overrides.append(f"quality.model_uri={args.model}")
        cfg = load_config(None, overrides)

        startup = init_ray(cfg)
        print(f"Ray start-up (ray.init, local, {os.cpu_count()} CPUs): {startup:.2f} s (excluded below)")
        rounds = []
        for rnd in range(args.runs):  # loop and stage alternate, so both see the same background load
            c0 = time.process_time()
            n, loop_s, loop_kept = plain_loop(f"{tmp}/input", f"{tmp}/loop{rnd}", args.model, cfg.quality.threshold,
                                              args.batch_size)
            loop_cpu = time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            man = run_stage(cfg, "quality", f"{tmp}/input", f"{tmp}/ray{rnd}")
            wall, drv_cpu = time.perf_counter() - t0, time.process_time() - c0
            st = man["stats"]
            loop_rate = n / loop_s
            steady = st["steady_docs_per_s"] or st["after_first_actor_docs_per_s"]
            early = st["after_first_actor_docs_per_s"]
            rounds.append((steady / loop_rate, n / wall / loop_rate))
            ray_kept = set(read_dataset(Storage(), f"{tmp}/ray{rnd}", ["id"]).column("id").to_pylist())
            same = "same kept docs" if ray_kept == loop_kept else f"DIFFERENT kept sets ({len(ray_kept)} vs {len(loop_kept)})"
            print(f"round {rnd + 1}: plain loop {loop_s:6.2f} s = {loop_rate:6,.0f} docs/s | Ray stage "
                  f"({args.actors} actors) {wall:6.2f} s wall = {n / wall:6,.0f} docs/s ({n / wall / loop_rate:.2f}x), "
                  f"pool up after {st['pool_start_seconds']:.2f} s (first actor {st['first_actor_seconds']:.2f} s); "
                  f"start-up excluded {steady:6,.0f} docs/s ({steady / loop_rate:.2f}x) [from the first actor on: "
                  f"{early:6,.0f} docs/s ({early / loop_rate:.2f}x)]; actors busy {st['unit_seconds']:.2f} s "
                  f"({st['unit_cpu_seconds']:.2f} s CPU) in all, loop {loop_cpu:.2f} s CPU, driver {drv_cpu:.2f} s CPU; {same}")
        ratios = sorted(r for r, _ in rounds)
        median = ratios[len(ratios) // 2]
        walls = sorted(w for _, w in rounds)
        print(f"speedup of the Ray stage over the plain loop, start-up excluded: median {median:.2f}x, "
              f"best {ratios[-1]:.2f}x over {len(ratios)} rounds (target >= {TARGET}x: "
              f"{'met' if median >= TARGET else 'NOT met'} by the median); with pool start included: median "
              f"{walls[len(walls) // 2]:.2f}x")
        if args.embedding_docs:
            r = embedding_rate(docs, args.embedding_docs)
            if r:
                print(f"embedding backend (all-MiniLM-L6-v2 + linear head, CPU, 1 process, {r[1]}): {r[0]:,.1f} docs/s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
