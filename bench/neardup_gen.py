"""Near-duplicate benchmark generator: families of edited real documents with exact pairwise Jaccard ground truth.

Each family starts from one real base text (bench/realtext.py) and is one of:
  near   the base plus copies edited at 0-2% of words (and sometimes a short real paragraph
         appended): pairs mostly at Jaccard 0.8-1.0;
  far    copies of a hidden base, each edited independently at 4-15%: pairs mostly at 0.15-0.55,
         which a deduplicator must not merge;
  chain  each copy an edit (1-6%) of the previous one: pairs over the whole range, ends far apart;
  single the base alone (background).
Edits are word substitutions, deletions, insertions and swaps. The ground truth is the exact Jaccard
similarity of the normalized word 5-gram sets of every pair inside a family (``udfs.minhash.jaccard``
rules: lowercase, no punctuation, collapsed spaces). Different families come from different,
non-overlapping real texts.

    python bench/neardup_gen.py --out /tmp/neardup      # docs/*.parquet, pairs.parquet, families.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from itertools import combinations
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realtext  # noqa: E402
from udfs.minhash import shingle_set  # noqa: E402

KINDS = (("near", 0.35), ("far", 0.20), ("chain", 0.20), ("single", 0.25))


def edit(words: list[str], rate: float, rng: random.Random, vocab: list[str]) -> list[str]:
    """Each word, with probability ``rate``: substituted (40%), deleted (25%), followed by an insert (25%) or swapped (10%)."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if rng.random() < rate:
            op = rng.random()
            if op < 0.40:
                out.append(rng.choice(vocab))
            elif op < 0.65:
                pass
            elif op < 0.90:
                out += [w, rng.choice(vocab)]
            elif i + 1 < len(words):
                out += [words[i + 1], w]
                i += 1
            else:
                out.append(w)
        else:
            out.append(w)
        i += 1
    return out


def _family(kind: str, base: str, rng: random.Random, vocab: list[str], pool: list[str]) -> list[str]:
    words = base.split()
    if kind == "single":
        return [base]
    if kind == "near":
        docs = [base]
        for _ in range(rng.randint(1, 5)):
            w = edit(words, rng.choice([0.0, 0.002, 0.005, 0.01, 0.02]), rng, vocab)
            if rng.random() < 0.3:
                w += rng.choice(pool).split()[:30]
            docs.append(" ".join(w))
        return docs
    if kind == "far":
        return [" ".join(edit(words, rng.uniform(0.04, 0.15), rng, vocab)) for _ in range(rng.randint(2, 4))]
    docs = [base]
    for _ in range(rng.randint(2, 5)):
        words = edit(words, rng.uniform(0.01, 0.06), rng, vocab)
        docs.append(" ".join(words))
    return docs


def make_benchmark(seed: int = 0) -> tuple[list[dict], list[dict], list[dict]]:
    """(documents, pairs with exact Jaccard, families) from every base text of the real data."""
    rng = random.Random(seed)
    bases = realtext.chunks()
    pool = realtext.paragraphs(min_words=10)
    vocab = sorted({w for b in bases for w in b.split() if w.isalpha()})
    rng.shuffle(bases)
    kinds = [k for k, share in KINDS for _ in range(round(share * len(bases)))]
    kinds = (kinds + ["single"] * len(bases))[:len(bases)]
    rng.shuffle(kinds)
    docs, pairs, families = [], [], []
    for f, (base, kind) in enumerate(zip(bases, kinds)):
        texts = _family(kind, base, rng, vocab, pool)
        ids = [hashlib.sha1(f"{seed}:{f}:{m}".encode()).hexdigest()[:16] for m in range(len(texts))]
        docs += [{"id": i, "text": t, "family": f, "kind": kind} for i, t in zip(ids, texts)]
        sets = [shingle_set(t) for t in texts]
        for x, y in combinations(range(len(texts)), 2):
            j = len(sets[x] & sets[y]) / len(sets[x] | sets[y])
            pairs.append({"family": f, "a": ids[x], "b": ids[y], "jaccard": round(j, 6)})
        families.append({"family": f, "kind": kind, "members": ids})
    rng.shuffle(docs)
    return docs, pairs, families


def write(out: Path, docs: list[dict], pairs: list[dict], families: list[dict], part_rows: int = 500) -> None:
    (out / "docs").mkdir(parents=True, exist_ok=True)
    for k in range(0, len(docs), part_rows):
        pq.write_table(pa.Table.from_pylist(docs[k:k + part_rows]), out / "docs" / f"part-{k // part_rows:04d}.parquet")
    pq.write_table(pa.Table.from_pylist(pairs), out / "pairs.parquet")
    (out / "families.json").write_text(json.dumps(families))


def summary(pairs: list[dict], families: list[dict]) -> str:
    hi = sum(p["jaccard"] >= 0.8 for p in pairs)
    lo = sum(p["jaccard"] <= 0.5 for p in pairs)
    mid = len(pairs) - hi - lo
    n_docs = sum(len(f["members"]) for f in families)
    kinds = {k: sum(f["kind"] == k for f in families) for k, _ in KINDS}
    return (f"{n_docs:,} documents in {len(families):,} families {kinds}; {len(pairs):,} pairs: "
            f"{hi:,} with J >= 0.8, {mid:,} between, {lo:,} with J <= 0.5")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for docs/*.parquet, pairs.parquet, families.json")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs, pairs, families = make_benchmark(args.seed)
    write(Path(args.out), docs, pairs, families)
    print(summary(pairs, families))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
