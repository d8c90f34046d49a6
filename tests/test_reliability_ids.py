"""Document ids are unique within a dataset: external rows get ids from their file's path under the dataset root
(two folders holding files of one name never collide), null or empty ids are assigned, and a stage whose output
and rejects hold an id twice fails naming it instead of committing."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.stage import StageFailed
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage

STORE = Storage()
NO_FILTERS = ("filter.repetition.enabled=false", "filter.quality.enabled=false", "filter.lines.enabled=false")
STAGES = {"filter": NO_FILTERS, "dedup_exact": (), "dedup_fuzzy": ()}


def _text(lang: str, i: int) -> str:
    return f"{lang} document {i}: " + " ".join(f"{lang}{i}w{k}" for k in range(60))


def _write(path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _ids(out) -> list:
    """The ids of a committed dataset's kept rows and its rejects together."""
    return (read_dataset(STORE, str(out), ["id"]).column("id").to_pylist()
            + read_rejects(STORE, str(out)).column("id").to_pylist())


@pytest.mark.parametrize("stage", list(STAGES))
def test_files_of_one_name_in_two_folders_get_distinct_ids(spark, cfg_factory, tmp_path, stage):
    """en/train-00000.parquet and de/train-00000.parquet without an id column: every row its own id, through the
    per-file reader (filter), the DataFrame reader (dedup_exact) and the per-part scans (dedup_fuzzy)."""
    for lang in ("en", "de"):
        _write(tmp_path / "in" / lang / "train-00000.parquet", [{"text": _text(lang, i)} for i in range(3)])
    man = run_stage(cfg_factory(*STAGES[stage]), stage, str(tmp_path / "in"), str(tmp_path / "out"), spark=spark)
    assert man["counts"] == {"in": 6, "kept": 6, "removed": {}}
    ids = _ids(tmp_path / "out")
    assert len(ids) == 6 and len(set(ids)) == 6
    # deterministic: the same ids the input reads with, on every read
    assert sorted(ids) == sorted(read_dataset(STORE, str(tmp_path / "in"), ["id"]).column("id").to_pylist())
    assert read_dataset(STORE, str(tmp_path / "in"), ["id"]).equals(read_dataset(STORE, str(tmp_path / "in"), ["id"]))


def test_null_and_empty_ids_in_an_external_input_are_assigned(spark, cfg_factory, tmp_path):
    rows = [{"id": None, "text": _text("x", 0)}, {"id": "", "text": _text("x", 1)},
            {"id": "kept-id", "text": _text("x", 2)}, {"id": None, "text": _text("x", 3)}]
    _write(tmp_path / "in" / "a" / "part.parquet", rows)
    _write(tmp_path / "in" / "b" / "part.parquet", [{"id": None, "text": _text("y", 0)}])
    man = run_stage(cfg_factory(*NO_FILTERS), "filter", str(tmp_path / "in"), str(tmp_path / "out"), spark=spark)
    assert man["counts"]["kept"] == 5
    out = read_dataset(STORE, str(tmp_path / "out"), ["id", "text"]).to_pylist()
    by_text = {r["text"]: r["id"] for r in out}
    assert by_text[_text("x", 2)] == "kept-id"  # an explicit id is kept as it is
    assert all(by_text.values()) and len(set(by_text.values())) == 5


@pytest.fixture(params=["driver", "spark"])
def id_check(request, monkeypatch):
    """Both ways a Spark stage's ids are checked: on the driver (small outputs) and as a Spark job (large ones)."""
    import pipeline.core.unique_ids as unique_ids
    if request.param == "spark":
        monkeypatch.setattr(unique_ids, "LOCAL_MAX_ROWS", 0)
    return request.param


def test_a_duplicated_explicit_id_fails_the_stage_naming_it(spark, cfg_factory, tmp_path, id_check):
    """12 ids occur twice (one of them within a file): the stage fails naming ten and the count; nothing committed."""
    dup = [f"dup-{i:02d}" for i in range(12)]
    _write(tmp_path / "in" / "a.parquet", [{"id": d, "text": _text("a", i)} for i, d in enumerate(dup)]
           + [{"id": "dup-00", "text": _text("a", 99)}, {"id": "unique-a", "text": _text("a", 100)}])
    _write(tmp_path / "in" / "b.parquet", [{"id": d, "text": _text("b", i)} for i, d in enumerate(dup[1:])])
    with pytest.raises(StageFailed) as err:
        run_stage(cfg_factory(*NO_FILTERS), "filter", str(tmp_path / "in"), str(tmp_path / "out"), spark=spark)
    msg = str(err.value)
    assert "12 document ids" in msg and all(f"'{d}'" in msg for d in dup[:10]) and "dup-10" not in msg
    assert "unique-a" not in msg and "stage filter" in msg
    assert read_manifest(STORE, str(tmp_path / "out")) is None


def test_a_warc_given_twice_fails_extract_naming_its_records(spark, cfg_factory, tmp_path, id_check):
    """A WARC listed twice holds the same records twice (ids from WARC-Record-ID): extract fails instead of
    committing every document twice under one id; the same pages as other records commit."""
    from tests.conftest import shared_path
    from tests.warcgen import relabel
    data = shared_path("warc", "dolma-sample-0000.warc.gz").read_bytes()
    cfg = cfg_factory("extract.url_filter.enabled=false")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc.gz").write_bytes(data)
    (tmp_path / "in" / "b.warc.gz").write_bytes(data)
    with pytest.raises(StageFailed, match=r"stage extract: \d+ document ids occur more than once") as err:
        run_stage(cfg, "extract", str(tmp_path / "in"), str(tmp_path / "out"), spark=spark)
    assert read_manifest(STORE, str(tmp_path / "out")) is None
    (tmp_path / "in" / "b.warc.gz").write_bytes(relabel(data, "b"))
    man = run_stage(cfg, "extract", str(tmp_path / "in"), str(tmp_path / "out"), spark=spark)
    ids = _ids(tmp_path / "out")
    assert man["counts"]["kept"] == 44 and len(ids) == len(set(ids)) == man["counts"]["in"]
    a = next(i for i in man["stats"]["inputs"] if i["file"].endswith("a.warc.gz"))
    shown = re.findall(r"'([0-9a-f]{32})'", str(err.value))
    assert f"{a['in']} document ids" in str(err.value) and len(shown) == 10 and set(shown) <= set(ids)


def test_driver_and_spark_id_checks_agree_on_nulls_empties_and_repeats(spark, tmp_path):
    """The two ways of checking ids give the same count and the same ids shown: null first, then sorted."""
    from pipeline.core.unique_ids import local_bad_ids, spark_bad_ids
    files = []
    parts = {"a": ["x", None, "", "y", "z1"], "b": ["y", "", None, "w"], "c": [f"z{i}" for i in range(12)]}
    for name, ids in parts.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"id": pa.array(ids, pa.string())}), path)
        files.append(str(path))
    driver = local_bad_ids(STORE, files)
    assert driver == spark_bad_ids(spark, STORE, files, rows=21)
    assert driver == (4, [None, "", "y", "z1"])
