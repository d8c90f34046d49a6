"""The near-duplicate benchmark itself: its ground truth is exact, its families are what they claim, its scorer counts right."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from conftest import shared_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import neardup_eval  # noqa: E402
import neardup_gen  # noqa: E402
from udfs.minhash import jaccard  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    shared_path("text", "wikitext-2-valid.txt")
    return neardup_gen.make_benchmark(0)


def test_ground_truth_is_the_exact_jaccard(bench):
    docs, pairs, families = bench
    text = {d["id"]: d["text"] for d in docs}
    for p in random.Random(0).sample(pairs, 60):
        assert p["jaccard"] == pytest.approx(jaccard(text[p["a"]], text[p["b"]]), abs=1e-6)
    assert len(docs) == sum(len(f["members"]) for f in families) > 2000
    assert len({d["id"] for d in docs}) == len(docs)


def test_families_span_the_similarity_range(bench):
    _, pairs, families = bench
    kind = {f["family"]: f["kind"] for f in families}
    near = [p["jaccard"] for p in pairs if kind[p["family"]] == "near"]
    far = [p["jaccard"] for p in pairs if kind[p["family"]] == "far"]
    chain = [p["jaccard"] for p in pairs if kind[p["family"]] == "chain"]
    assert sum(j >= 0.8 for j in near) / len(near) > 0.75 and min(near) > 0.5
    assert max(far) < 0.7 and sum(j <= 0.5 for j in far) / len(far) > 0.95
    assert min(chain) < 0.5 < 0.8 < max(chain)
    assert sum(p["jaccard"] >= 0.8 for p in pairs) > 1000 and sum(p["jaccard"] <= 0.5 for p in pairs) > 500


def test_scorer_on_perfect_and_on_useless_outcomes(bench):
    docs, pairs, families = bench
    # perfect: per family, clusters of the ground truth (pairs above 0.5 linked); keep the first of each
    find = neardup_eval._linked_above(pairs)
    keeper: dict[str, str] = {}
    dup_of = {}
    for f in families:
        for m in f["members"]:
            root = find(m)
            if root in keeper:
                dup_of[m] = keeper[root]
            else:
                keeper[root] = m
    kept = {d["id"] for d in docs} - set(dup_of)
    s = neardup_eval.score(pairs, families, kept, dup_of)
    assert s["a"] == 1.0 and s["b"] == 0.0 and s["c"] == 1.0 and s["cross_family_removals"] == 0
    # keeping everything catches nothing; merging whole families wrongly merges every isolated low pair
    s = neardup_eval.score(pairs, families, {d["id"] for d in docs}, {})
    assert s["a"] == 0.0 and s["b"] == 0.0 and s["c"] == 0.0
    merged = {m: f["members"][0] for f in families for m in f["members"][1:]}
    s = neardup_eval.score(pairs, families, {f["members"][0] for f in families}, merged)
    assert s["a"] == 1.0 and s["b"] == 1.0 and s["b_pairs"] > 0
