"""Per-part profiles: exact counts, merge in any order to the same result, and they reach the manifest."""
import json
import math

import pyarrow as pa

from pipeline.core.dataset import REJECT_SCHEMA, Counts, PartWriter, build_manifest, reject_row
from pipeline.core.profile import SAMPLES_PER_REASON, SCORE_BINS, Profiler, length_bin, length_bin_edges, merge
from pipeline.core.storage import Storage

DOCS = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string()), ("lang", pa.string()),
                  ("lang_score", pa.float64()), ("text_chars", pa.int64())])


def docs_table(texts, langs, scores):
    n = len(texts)
    return pa.table({"id": [f"d{i}" for i in range(n)], "url": [f"https://a.example/{i}" for i in range(n)],
                     "text": texts, "lang": langs, "lang_score": scores,
                     "text_chars": [len(t) if t is not None else None for t in texts]}, schema=DOCS)


def rejects_table(n):
    rows = []
    for i in range(n):
        reason = ["lang_mismatch", "http_status", "not_html"][i % 3]
        details = ({"lang": "de" if i % 2 else "fr", "lang_score": (i % 10) / 10} if reason == "lang_mismatch"
                   else {"status": 404})
        rows.append(reject_row(f"r{i:03d}", f"https://site{i % 4}.example/p{i}", reason, details,
                               f"text of {i}\nsecond line" if reason == "lang_mismatch" else None, "full", 1.0))
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


def test_length_bins_are_half_octaves():
    assert [length_bin(n) for n in (0, 1, 2, 3, 4, 1000)] == [0, 0, 2, 3, 4, 19]
    lo, hi = length_bin_edges(19)
    assert lo <= 1000 < hi and math.isclose(hi / lo, math.sqrt(2))


def test_kept_profile_counts():
    texts = ["a" * 10, "b" * 1000, "é" * 1000, "", None]
    p = Profiler(rejects=False)
    p.add(docs_table(texts, ["en", "en", "fr", None, "en"], [0.99, 0.5, 1.0, None, float("nan")]))
    r = p.result()
    assert r["rows"] == 5
    assert r["chars"] == 2010                    # characters, not bytes (é is two bytes)
    assert r["lengths"] == {"6": 1, "19": 2, "0": 2}
    assert r["langs"] == {"en": 3, "fr": 1}
    assert r["scores"]["lang_score"] == {str(SCORE_BINS - 1): 2, str(SCORE_BINS // 2): 1}  # 1.0 in the last bin
    assert "text_chars" not in r["scores"]       # an int column is not a score


def test_reject_profile_and_samples_do_not_depend_on_batching():
    t = rejects_table(60)
    one = Profiler(rejects=True)
    one.add(t)
    split = Profiler(rejects=True)
    for off in (40, 0, 17):                      # other batches, another order
        split.add(t.slice(off, {40: 20, 0: 17, 17: 23}[off]))
    a, b = one.result(), split.result()
    assert a == b
    assert a["reasons"] == {"lang_mismatch": 20, "http_status": 20, "not_html": 20}
    assert sum(sum(d.values()) for d in a["domains"].values()) == 60
    assert a["langs"]["lang_mismatch"] == {"de": 10, "fr": 10}
    assert sum(a["scores"]["lang_score"]["lang_mismatch"].values()) == 20
    assert {len(v) for v in a["samples"].values()} == {SAMPLES_PER_REASON}
    assert all(s["text"].startswith("text of") for s in a["samples"]["lang_mismatch"])


def test_merge_is_order_free_and_refuses_missing_profiles():
    t = rejects_table(30)
    parts = []
    for off in range(0, 30, 10):
        p = Profiler(rejects=True)
        p.add(t.slice(off, 10))
        parts.append(p.result())
    whole = Profiler(rejects=True)
    whole.add(t)
    assert merge(parts) == merge(reversed(parts)) == merge([whole.result()])
    assert merge(parts + [None]) is None
    assert merge([]) == {"rows": 0}


def test_part_writer_profiles_and_manifest_merges(tmp_path):
    store = Storage()
    root = str(tmp_path / "stage")
    infos = []
    for i, texts in enumerate((["x" * 100, "y" * 200], ["z" * 300])):
        w = PartWriter(store, root, f"part-{i:05d}-t.parquet", DOCS)
        w.write(docs_table(texts, ["en"] * len(texts), [0.9] * len(texts)))
        infos.append(w.close())
    rw = PartWriter(store, root, "_rejects/part-00000-t.parquet", REJECT_SCHEMA)
    rw.write(rejects_table(9))
    rej = rw.close()
    assert infos[0].profile["chars"] == 300 and rej.profile["rows"] == 9
    counts = Counts(n_in=12, kept=3, removed={"lang_mismatch": 3, "http_status": 3, "not_html": 3})
    man = build_manifest(stage="s", config_hash="h", input_desc={}, parts=infos, rejects=[rej], schema=DOCS,
                         counts=counts, failed_inputs=[], started=0.0)
    assert all("profile" not in p for p in man["parts"] + man["rejects"])   # the parts list stays small
    assert man["profile"]["kept"]["rows"] == 3 and man["profile"]["kept"]["chars"] == 600
    assert man["profile"]["removed"]["reasons"] == counts.removed
    json.dumps(man)  # JSON all the way down
