"""Near-duplicate benchmark: dedup_fuzzy with the refinedweb and fineweb presets, scored against exact Jaccard.

Scores (pairs and families from bench/neardup_gen.py):
  (a) pairs with J >= 0.8: share where at most one of the two survives (target >= 0.99, refinedweb);
  (b) pairs with J <= 0.5 that no chain of pairs above 0.5 links inside their family: share wrongly
      removed, i.e. merged into one cluster (target <= 0.01, refinedweb). "(b) raw" counts every pair
      with J <= 0.5 where at most one survives, transitive merges along chains included;
  (c) families whose pairs are all >= 0.8: share with exactly one survivor.
Also: documents removed with a keeper from another family (cross-family merges; should be 0).

    python bench/neardup_eval.py [--out DIR] [--presets refinedweb fineweb]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import neardup_gen  # noqa: E402
from pipeline.core.config import load_config  # noqa: E402
from pipeline.core.dataset import read_dataset, read_rejects  # noqa: E402
from pipeline.run.runner import run_stage  # noqa: E402
from pipeline.core.storage import Storage  # noqa: E402

TARGETS = {"refinedweb": {"a": 0.99, "b": 0.01}}


def _linked_above(pairs: list[dict], threshold: float = 0.5):
    """find(): ground-truth clusters joined by pairs with J > threshold (union-find over a family's pairs)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        if p["jaccard"] > threshold:
            ra, rb = find(p["a"]), find(p["b"])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return find


def score(pairs: list[dict], families: list[dict], kept: set[str], dup_of: dict[str, str]) -> dict:
    """The benchmark's numbers for one stage output."""
    cluster = lambda x: dup_of.get(x, x)  # noqa: E731  (a keeper is always kept)
    hi = [p for p in pairs if p["jaccard"] >= 0.8]
    lo = [p for p in pairs if p["jaccard"] <= 0.5]
    find = _linked_above(pairs)
    isolated = [p for p in lo if find(p["a"]) != find(p["b"])]
    by_family = defaultdict(list)
    for p in pairs:
        by_family[p["family"]].append(p)
    all_hi = [f for f in families if len(f["members"]) > 1 and all(p["jaccard"] >= 0.8 for p in by_family[f["family"]])]
    family_of = {m: f["family"] for f in families for m in f["members"]}
    return {
        "a": sum(not (p["a"] in kept and p["b"] in kept) for p in hi) / max(1, len(hi)), "a_pairs": len(hi),
        "b": sum(cluster(p["a"]) == cluster(p["b"]) for p in isolated) / max(1, len(isolated)), "b_pairs": len(isolated),
        "b_raw": sum(not (p["a"] in kept and p["b"] in kept) for p in lo) / max(1, len(lo)), "b_raw_pairs": len(lo),
        "c": sum(sum(m in kept for m in f["members"]) == 1 for f in all_hi) / max(1, len(all_hi)), "c_families": len(all_hi),
        "cross_family_removals": sum(family_of[d] != family_of[k] for d, k in dup_of.items()),
        "docs": len(family_of), "kept": len(kept), "removed": len(dup_of),
    }


def evaluate(root: Path, presets: list[str], master: str = "local[2]") -> dict:
    docs, pairs, families = neardup_gen.make_benchmark(0)
    neardup_gen.write(root, docs, pairs, families)
    print(neardup_gen.summary(pairs, families))
    store, results = Storage(), {}
    for preset in presets:
        cfg = load_config(None, [f"spark.master={master}", f"dedup_fuzzy.preset={preset}", "run.audit=none"])
        out = root / f"out-{preset}"
        t0 = time.time()
        man = run_stage(cfg, "dedup_fuzzy", str(root / "docs"), str(out), force=True)
        kept = set(read_dataset(store, str(out), ["id"]).column("id").to_pylist())
        dup_of = {r["id"]: json.loads(r["details"])["duplicate_of"] for r in read_rejects(store, str(out)).to_pylist()}
        results[preset] = {**score(pairs, families, kept, dup_of), "seconds": round(time.time() - t0, 1),
                           "minhash": man["stats"]["minhash"], "threshold_50": man["stats"]["threshold_50"]}
    return results


def report(results: dict) -> str:
    lines = ["preset      minhash              (a) J>=0.8 one left   (b) J<=0.5 wrongly merged   (b raw)   "
             "(c) one survivor   cross-family   time"]
    for preset, r in results.items():
        t = TARGETS.get(preset)
        verdict = ""
        if t:
            ok = r["a"] >= t["a"] and r["b"] <= t["b"]
            verdict = f"  targets a>={t['a']}, b<={t['b']}: {'MET' if ok else 'MISSED'}"
        lines.append(f"{preset:11s} {r['minhash']:20s} {r['a']:.4f} of {r['a_pairs']:5d}       "
                     f"{r['b']:.4f} of {r['b_pairs']:5d}           {r['b_raw']:.4f}    "
                     f"{r['c']:.4f} of {r['c_families']:4d}   {r['cross_family_removals']:6d}       "
                     f"{r['seconds']:.0f}s{verdict}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="work folder (default: a new temporary folder)")
    ap.add_argument("--presets", nargs="+", default=["refinedweb", "fineweb"])
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="mdr-neardup-"))
    results = evaluate(root, args.presets, args.master)
    (root / "results.json").write_text(json.dumps(results, indent=1))
    print(report(results))
    print(f"(details in {root / 'results.json'})")
    return 0 if all(results[p]["a"] >= t["a"] and results[p]["b"] <= t["b"]
                    for p, t in TARGETS.items() if p in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
