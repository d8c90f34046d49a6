"""The extract stage in Spark local mode on real WARCs: no crash, every record counted, charsets right."""
import json
import unicodedata
from pathlib import Path

import pyarrow.compute as pc
import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from tests.conftest import shared_path
from tests.warcgen import relabel


def _count_records(path: Path) -> tuple[int, int]:
    """(WARC records, response records) warcio reads from the file."""
    n = responses = 0
    with open(path, "rb") as f:
        try:
            for rec in ArchiveIterator(f, check_digests=False):
                n += 1
                responses += rec.rec_type == "response"
        except Exception:
            pass
    return n, responses


def _no_url_filter(cfg_factory, *extra):
    return cfg_factory("extract.url_filter.enabled=false", *extra)


@pytest.fixture(scope="module")
def all_shared(spark, cfg_factory, tmp_path_factory):
    """Every shared WARC, every language kept (min score 0), so labels can be checked."""
    warcs = shared_path("warc")
    out = str(tmp_path_factory.mktemp("extract_all") / "extract")
    cfg = _no_url_filter(cfg_factory, "extract.langid.languages=[]", "extract.langid.min_score=0",
                         "run.max_failed_input_share=0.5", "run.audit=full")
    man = run_stage(cfg, "extract", str(warcs), out)
    return warcs, out, man


def test_every_shared_warc_is_read_and_every_record_counted(all_shared):
    warcs, out, man = all_shared
    files = sorted(p for p in warcs.iterdir() if p.name.endswith((".warc", ".warc.gz")))
    c = man["counts"]
    assert c["in"] == c["kept"] + sum(c["removed"].values())
    assert man["rows"] == c["kept"] == read_dataset(Storage(), out).num_rows
    per_file = {Path(i["file"]).name: i for i in man["stats"]["inputs"]}
    assert sorted(per_file) == [p.name for p in files]
    for p in files:  # each file: as many records counted as warcio can read from it, its responses as documents
        assert (per_file[p.name]["records"], per_file[p.name]["in"]) == _count_records(p), p.name
    by_type = man["stats"]["records_by_type"]
    assert by_type["response"] == c["in"] and sum(by_type.values()) == man["stats"]["records"] > c["in"]
    assert by_type["request"] > 0 and by_type["warcinfo"] > 0 and "not_response" not in c["removed"]
    assert c["removed"]["http_status"] > 0 and c["removed"]["not_html"] > 0
    # the clipped record and the chunked file: their page is extracted, nothing crashes
    assert per_file["clipped-record.warc.gz"]["kept"] == 1
    assert "truncated" in per_file["clipped-record.warc.gz"]["error"]
    assert [Path(f["file"]).name for f in man["failed_inputs"]] == ["clipped-record.warc.gz"]
    assert per_file["example-chunked.warc"]["kept"] == 1
    rejects = read_rejects(Storage(), out)
    assert rejects.num_rows == sum(c["removed"].values())
    assert set(pc.unique(rejects.column("reason")).to_pylist()) == set(c["removed"])


def test_charsets_and_languages_on_real_pages(all_shared):
    _, out, _ = all_shared
    t = read_dataset(Storage(), out).to_pylist()
    by_file = {}
    for r in t:
        by_file.setdefault(Path(r["warc_file"]).name, []).append(r)
    ja = by_file["clueweb09-ja-eucjp.warc.gz"]
    assert len(ja) == 29
    assert all(r["charset"] == "euc_jp" for r in ja)
    assert sum(r["lang"] == "ja" for r in ja) >= 27
    kana = sum(1 for r in ja for ch in r["text"] if unicodedata.name(ch, "").startswith(("HIRAGANA", "KATAKANA")))
    assert kana > 1000  # readable Japanese, not mojibake
    cc = by_file["cc-main-2020-34-excerpt.warc.gz"]
    langs = sorted(r["lang"] for r in cc)
    assert langs.count("zh") >= 9 and "de" in langs and "ru" in langs
    # page by page: the German, Russian, Dutch and English pages of the excerpt, and its Chinese pages
    by_url = {r["url"]: r["lang"] for r in cc}
    assert by_url["http://06.live-radsport.ch/tippspiel/stats_140_petzi.html"] == "de"
    assert by_url["http://01spb.ru/company/"] == "ru" and by_url["http://0900-hovenier.nl/gelderland/oosterbeek/"] == "nl"
    assert by_url["http://037426.cn/"] == "en"
    for url in ("http://003338.cn/l41/481397.html", "http://035.psb556.com/24/i/u_1090813/article.html",
                "http://0755krk.com/76104/list_4_1.html", "http://096355.com/video/11073.html?11073-0-2"):
        assert by_url[url] == "zh", url
    news = by_file["news-articles-181.warc.gz"]
    assert sum(r["lang"] == "en" for r in news) >= 155
    for r in t:
        assert len(r["id"]) == 32 and r["text_chars"] == len(r["text"]) > 0


def test_default_config_keeps_english_at_065(spark, cfg_factory, tmp_path):
    warc = shared_path("warc", "news-articles-181.warc.gz")
    out = str(tmp_path / "extract")
    man = run_stage(_no_url_filter(cfg_factory), "extract", str(warc), out)
    t = read_dataset(Storage(), out)
    assert set(t.column("lang").to_pylist()) == {"en"}
    assert min(t.column("lang_score").to_pylist()) >= 0.65
    assert 150 <= man["rows"] <= 165
    removed = man["counts"]["removed"]
    assert removed["lang_mismatch"] + removed["lang_prescreen"] >= 15 and removed["lang_prescreen"] >= 10
    # the pre-screen only skips work: without it the same documents are kept
    off = run_stage(_no_url_filter(cfg_factory, "extract.langid.prescreen=false"), "extract", str(warc),
                    str(tmp_path / "off"))
    assert "lang_prescreen" not in off["counts"]["removed"] and off["rows"] == man["rows"]
    assert set(read_dataset(Storage(), str(tmp_path / "off")).column("id").to_pylist()) == set(t.column("id").to_pylist())
    assert man["stats"]["records"] == 363 and man["counts"]["in"] == 181  # warcinfo + 181 requests + 181 responses
    # deterministic: a forced re-run gives the same ids and text
    again = run_stage(_no_url_filter(cfg_factory), "extract", str(warc), str(tmp_path / "again"))
    t2 = read_dataset(Storage(), str(tmp_path / "again"))
    assert again["counts"] == man["counts"]
    assert t.sort_by("id").select(["id", "text"]).equals(t2.sort_by("id").select(["id", "text"]))


def test_rerun_of_committed_stage_is_a_noop_and_force_reruns(spark, cfg_factory, tmp_path, capsys):
    warc = shared_path("warc", "dolma-sample-0001.warc.gz")
    out = str(tmp_path / "extract")
    cfg = _no_url_filter(cfg_factory)
    first = run_stage(cfg, "extract", str(warc), out)
    second = run_stage(cfg, "extract", str(warc), out)
    assert second["timings"] == first["timings"]  # the same manifest: nothing ran
    assert "nothing to do" in capsys.readouterr().err
    third = run_stage(cfg, "extract", str(warc), out, force=True)
    assert third["timings"] != first["timings"] and third["counts"] == first["counts"]
    changed = run_stage(_no_url_filter(cfg_factory, "extract.include_tables=false"), "extract", str(warc), out)
    assert changed["config_hash"] != first["config_hash"]
    parts = sorted(p.name for p in Path(out).glob("part-*.parquet"))
    assert parts == sorted(Path(p["path"]).name for p in changed["parts"])  # older parts cleaned after commit


def test_paths_listing_resolved_against_base(spark, cfg_factory, tmp_path):
    import gzip
    warcs = shared_path("warc")
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(b"dolma-sample-0000.warc.gz\ndolma-sample-0001.warc.gz\n"))
    cfg = _no_url_filter(cfg_factory, f"run.paths_base_url={warcs}/")
    man = run_stage(cfg, "extract", str(listing), str(tmp_path / "out"))
    assert man["input"]["parts"] == 2
    assert man["rows"] == 37


def test_corrupt_file_is_listed_as_failed_and_job_fails_past_share(spark, cfg_factory, tmp_path):
    from pipeline.core.stage import StageFailed
    src = tmp_path / "in"
    src.mkdir()
    good = shared_path("warc", "dolma-sample-0000.warc.gz")
    (src / "a.warc.gz").write_bytes(good.read_bytes())
    (src / "b.warc.gz").write_bytes(b"this is not a WARC file at all\n" * 100)
    copy = relabel(good.read_bytes(), "c")  # a's pages as other records (a plain copy repeats its document ids)
    (src / "c.warc.gz").write_bytes(copy[: len(copy) // 2])  # truncated mid-member
    with pytest.raises(StageFailed, match=r"2 of 3 input files failed .*b.warc.gz"):
        run_stage(_no_url_filter(cfg_factory), "extract", str(src), str(tmp_path / "out"))
    man = run_stage(_no_url_filter(cfg_factory, "run.max_failed_input_share=0.7"), "extract", str(src),
                    str(tmp_path / "out"))
    failed = {Path(f["file"]).name: f["error"] for f in man["failed_inputs"]}
    assert sorted(failed) == ["b.warc.gz", "c.warc.gz"]
    per_file = {Path(i["file"]).name: i for i in man["stats"]["inputs"]}
    assert per_file["a.warc.gz"]["kept"] == 22
    assert 0 < per_file["c.warc.gz"]["kept"] < 22  # what could be read before the cut is kept
