"""What 128-bit dedup keys cost against 64-bit ones: key computation alone, and whole dedup stages in Spark.

(1) keys alone, one process, one core: MinHash per-document work (shingles, signatures, band keys) at refinedweb's
    450 x 20 with 64- and 128-bit band keys; window hashing (k = 50, word tokens) with 64- and 128-bit hashes.
(2) stages, one Spark session (local[2], after a warm-up run): dedup_fuzzy (``--preset``) and dedup_exact (substring
    step only) on the same synthetic documents at ``key_bits`` / ``hash_bits`` 64 and 128, alternated (64, 128, 64,
    128, ... ``--repeat`` times each) so that the load of a shared machine falls on both; the fastest run of each
    counts. Wall seconds and CPU seconds of the whole process tree (driver, JVM, Python workers), and Spark's
    shuffle bytes written (dedup_exact's manifest; for dedup_fuzzy, its jobs' stages).
Documents: random words of a Zipf-like vocabulary, 200-800 words; 10% near-copies of another document (1% of words
edited), 30% carry one of 50 boilerplate passages of 60-150 words, so both stages find work.

    python bench/hash_width_bench.py [--stage fuzzy|exact|keys] [--docs 4000] [--repeat 2]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exact_dedup import TreeUsage  # noqa: E402


def build_docs(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(50_000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    passages = [" ".join(rng.choices(vocab, weights, k=rng.randint(60, 150))) for _ in range(50)]
    docs: list[dict] = []
    for i in range(n):
        if docs and rng.random() < 0.1:
            words = rng.choice(docs)["text"].split()
            text = " ".join(w if rng.random() > 0.01 else "edit" for w in words)
        else:
            text = " ".join(rng.choices(vocab, weights, k=rng.randint(200, 800)))
            if rng.random() < 0.3:
                text = f"{text} {rng.choice(passages)}"
        docs.append({"id": f"d{i:07d}", "url": f"https://example.org/{i}", "text": text})
    return docs


def best(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return min(out)


def keys_alone(docs: list[dict], repeat: int) -> None:
    from udfs.exact_substring import window_hashes
    from udfs.minhash import PRESETS, MinHasher, MinHashParams
    texts = [d["text"] for d in docs]
    p = PRESETS["refinedweb"]
    for bits in (64, 128):
        mh = MinHasher(MinHashParams(p.num_hashes, p.bands, p.rows, key_bits=bits))
        s = best(lambda: [mh.doc_band_keys(texts[i:i + 64]) for i in range(0, len(texts), 64)], repeat)
        print(f"minhash {p.name} + {bits}-bit band keys: {len(texts) / s:8.1f} docs/s (one core)")
    chars = sum(len(t) for t in texts)
    for bits in (64, 128):
        s = best(lambda: [window_hashes(texts[i:i + 256], 50, "word", bits) for i in range(0, len(texts), 256)], repeat)
        print(f"window hashes, {bits:3d} bits: {chars / s / 1e6:8.1f} M chars/s (one core)")


def stages(docs: list[dict], stage: str, preset: str, repeat: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.core.config import load_config
    from pipeline.run.runner import run_stage
    from pipeline.core.spark import get_spark
    from pipeline.stages.dedup_exact import shuffle_metrics
    name = {"fuzzy": "dedup_fuzzy", "exact": "dedup_exact"}[stage]
    key = {"fuzzy": "dedup_fuzzy.key_bits", "exact": "dedup_exact.hash_bits"}[stage]
    base = ["spark.master=local[2]", "spark.driver_memory=2g", "run.audit=none", f"dedup_fuzzy.preset={preset}",
            "dedup_exact.url_dedup=false", "dedup_exact.doc_dedup=false"]
    work = Path(tempfile.mkdtemp(prefix="mdr-bench-hashwidth-"))
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    inp = work / "in"
    inp.mkdir()
    for p in range(8):
        pq.write_table(pa.Table.from_pylist(docs[p::8], schema=schema), inp / f"part-{p:03d}.parquet")
    spark = get_spark(load_config(None, base))
    warm = work / "warm"
    warm.mkdir()
    pq.write_table(pa.Table.from_pylist(docs[:200], schema=schema), warm / "part-000.parquet")
    run_stage(load_config(None, base), name, str(warm), str(work / "warm-out"), spark=spark, force=True)
    results: dict[int, list] = {64: [], 128: []}
    for r in range(repeat):
        for bits in (64, 128):
            cfg = load_config(None, base + [f"{key}={bits}"])
            group = f"hash-width-{bits}-{r}"
            spark.sparkContext.setJobGroup(group, group)   # dedup_exact sets its own and reports its shuffle
            with TreeUsage() as use:
                t0 = time.perf_counter()
                man = run_stage(cfg, name, str(inp), str(work / f"out-{bits}-{r}"), spark=spark, force=True)
                wall = time.perf_counter() - t0
            st = man["stats"]
            if stage == "fuzzy":
                st = shuffle_metrics(spark.sparkContext, group)
            results[bits].append((wall, use.cpu_seconds, st.get("shuffle_write_bytes"), man["counts"]["kept"]))
            print(f"  {name} {key}={bits} run {r}: {wall:6.1f} s wall, {use.cpu_seconds:6.1f} s CPU, "
                  f"kept {man['counts']['kept']}, shuffle bytes {st.get('shuffle_write_bytes')}, "
                  f"windows {st.get('windows')}",
                  flush=True)
    w64, w128 = min(x[0] for x in results[64]), min(x[0] for x in results[128])
    c64, c128 = min(x[1] for x in results[64]), min(x[1] for x in results[128])
    what = preset if stage == "fuzzy" else "k=50 word"
    print(f"{name} on {len(docs):,} docs ({what}): fastest wall 64-bit {w64:.1f} s, "
          f"128-bit {w128:.1f} s ({(w128 / w64 - 1) * 100:+.1f}%); least CPU {c64:.1f} s vs {c128:.1f} s "
          f"({(c128 / c64 - 1) * 100:+.1f}%)")
    assert {x[3] for x in results[64]} == {x[3] for x in results[128]}, "64- and 128-bit keys kept different counts"
    spark.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=["keys", "fuzzy", "exact"], default="keys")
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--preset", default="refinedweb")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    docs = build_docs(args.docs)
    if args.stage == "keys":
        keys_alone(docs, args.repeat)
    else:
        stages(docs, args.stage, args.preset, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
