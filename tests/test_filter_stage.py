"""The filter stage on Spark: every document kept or removed with its reason, counts conserved, text corrected."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from udfs.words import split_words

ARTICLE = (
    "The town council met on Tuesday evening to discuss the future of the old railway station, which has stood "
    "empty for more than a decade. Several residents spoke in favour of turning the building into a library and "
    "community centre, while others argued that the cost of the repairs would be far too high for a town of "
    "this size.\n"
    "After two hours of debate, the council agreed to commission a survey of the roof and the foundations. "
    "The results are expected in the spring, and a public meeting will be held once the engineers have "
    "reported. Until then, the station will remain closed to visitors, although the gardens around it are "
    "still open to walkers and to the volunteers who look after the flower beds.")
GARDEN = (
    "Growing tomatoes on a balcony is easier than many people think. Choose a sunny spot that gets at least six "
    "hours of light, use a large pot with good drainage, and water the plants deeply rather than often. "
    "Cherry varieties are the most forgiving, and they tend to produce fruit from midsummer until the first "
    "cold nights of autumn. A little support from a bamboo cane and a weekly feed with a liquid fertiliser "
    "will keep them healthy, and the reward is a steady supply of sweet fruit that tastes far better than "
    "anything that has travelled across the country to reach the shops.")
DOCS = {
    "part-a.parquet": [
        ("a1", "https://news.example.org/station", "Station\n" + ARTICLE),           # heading line removed
        ("a2", "https://example.org/short", "A notice: the library will be closed on Monday for repairs to the "
                                            "heating, and it will open again on Tuesday morning at nine."),
        ("a3", "https://example.org/menu", "\n".join(["Click here to subscribe to our newsletter today"] * 8)),
        ("a4", "https://example.org/empty", None),
    ],
    "part-b.parquet": [
        ("b1", "https://garden.example.org/tomatoes", GARDEN),
        ("b2", "https://example.org/table", "Results of the match and the scores of the day\n" + "\n".join(
            f"{i * 1009} {i * 7919} {i * 1301} {i * 1709} {i * 1901} {i * 2311}" for i in range(11, 25))),
        ("b3", "https://example.org/nav", GARDEN + "\n" + "\n".join(
            ["Home", "News", "Sport", "Weather", "Travel", "Culture", "Login", "Search"])),
    ],
}
EXPECTED_REMOVED = {"gopher_short_doc": 1, "gopher_dup_line_frac": 1, "gopher_empty": 1,
                    "gopher_below_alpha_threshold": 1, "line_filter_removed_too_much": 1}


def write_input(root) -> str:
    root.mkdir()
    for name, rows in DOCS.items():
        ids, urls, texts = zip(*rows)
        table = pa.table({"id": list(ids), "url": list(urls), "text": list(texts), "lang": ["en"] * len(rows),
                          "text_chars": [len(t) if t else 0 for t in texts]})
        pq.write_table(table, str(root / name))
    return str(root)


def test_filter_stage_counts_reasons_and_corrects_text(spark, cfg_factory, tmp_path):
    src, out = write_input(tmp_path / "in"), str(tmp_path / "filter")
    cfg = cfg_factory("run.audit=full")
    manifest = run_stage(cfg, "filter", src, out, spark=spark)

    counts = manifest["counts"]
    assert counts == {"in": 7, "kept": 2, "removed": EXPECTED_REMOVED}
    assert counts["in"] == counts["kept"] + sum(counts["removed"].values())
    assert read_manifest(Storage(), out)["counts"] == counts

    kept = read_dataset(Storage(), out).to_pylist()
    by_id = {r["id"]: r for r in kept}
    assert sorted(by_id) == ["a1", "b1"]
    assert by_id["a1"]["text"] == ARTICLE                    # the one-word heading went
    assert by_id["a1"]["text_chars"] == len(ARTICLE)
    assert by_id["b1"]["text"] == GARDEN and by_id["b1"]["lang"] == "en"
    # scores are measured on the text as it came in
    assert by_id["a1"]["gopher_n_words"] == sum(1 for w in split_words("Station\n" + ARTICLE) if w.strip(".,"))
    assert 0.8 <= by_id["b1"]["gopher_alpha_words_share"] <= 1.0
    assert by_id["a1"]["line_removed_words_share"] > 0 and by_id["b1"]["line_removed_words_share"] == 0

    rejects = {r["id"]: r for r in read_rejects(Storage(), out).to_pylist()}
    assert {i: r["reason"] for i, r in rejects.items()} == {
        "a2": "gopher_short_doc", "a3": "gopher_dup_line_frac", "a4": "gopher_empty",
        "b2": "gopher_below_alpha_threshold", "b3": "line_filter_removed_too_much"}
    assert json.loads(rejects["a3"]["details"])["dup_line_frac"] == 7 / 8
    assert json.loads(rejects["b3"]["details"])["line_removed_words_share"] > 0.05
    # each removed navigation line is counted under its rule ("Login" is a navigation fragment, the rest single words)
    assert json.loads(rejects["b3"]["details"])["lines_removed_by"] == {"few_words": 7, "navigation": 1}
    assert rejects["b3"]["text"] == DOCS["part-b.parquet"][2][2] and rejects["b3"]["url"] == "https://example.org/nav"

    # the same input and config: nothing to do; another threshold: a new run with other counts
    assert run_stage(cfg, "filter", src, out, spark=spark)["created"] == manifest["created"]
    looser = run_stage(cfg_factory("run.audit=full", "filter.lines.max_removed_words_share=0.5"), "filter", src, out,
                       spark=spark)
    assert looser["counts"]["kept"] == 3 and "line_filter_removed_too_much" not in looser["counts"]["removed"]
    nav = {r["id"]: r["text"] for r in read_dataset(Storage(), out).to_pylist()}["b3"]
    assert nav == GARDEN


def test_filter_stage_reads_jsonl_and_can_skip_sub_filters(spark, cfg_factory, tmp_path):
    src = tmp_path / "docs.jsonl"
    notice = DOCS["part-a.parquet"][1][2]          # too short for the quality filters, fine for repetition
    src.write_text("\n".join(json.dumps({"text": t}) for t in (ARTICLE, notice, GARDEN)) + "\n")
    cfg = cfg_factory("filter.quality.enabled=false", "filter.lines.enabled=false")
    manifest = run_stage(cfg, "filter", str(src), str(tmp_path / "out"), spark=spark)
    assert manifest["counts"] == {"in": 3, "kept": 3, "removed": {}}
    rows = read_dataset(Storage(), str(tmp_path / "out")).to_pylist()
    assert [r["text"] for r in rows] == [ARTICLE, notice, GARDEN]
    assert all(r["gopher_n_words"] is None and r["gopher_dup_line_frac"] is not None for r in rows)
