"""Datasets: manifests commit parts, readers see only listed parts, external Parquet/JSONL inputs are normalized."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.dataset import (ConservationError, Counts, PartInfo, build_manifest, commit, open_input,
                                   read_dataset, read_manifest, read_part)
from pipeline.core.storage import Storage, StorageError, safe_key

SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])


def _write(root, name, rows):
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), root / name)
    return PartInfo(name, len(rows), (root / name).stat().st_size)


def test_only_listed_parts_are_read_and_counts_must_conserve(tmp_path):
    store = Storage()
    root = tmp_path / "ds"
    good = _write(root, "part-00000-a0-x.parquet", [{"id": "1", "url": None, "text": "a"}])
    _write(root, "part-00000-a1-y.parquet", [{"id": "1", "url": None, "text": "a"}])  # a retried attempt's file
    assert read_manifest(store, str(root)) is None
    counts = Counts()
    counts.keep()
    counts.drop("too_short", 2)
    man = build_manifest(stage="t", config_hash="h", input_desc={}, parts=[good], rejects=[], schema=SCHEMA,
                         counts=counts, failed_inputs=[], started=0.0)
    commit(store, str(root), man)
    assert read_dataset(store, str(root)).num_rows == 1  # the unlisted attempt is invisible
    assert read_manifest(store, str(root))["counts"] == {"in": 3, "kept": 1, "removed": {"too_short": 2}}
    bad = Counts(n_in=5, kept=1, removed={"x": 1})
    with pytest.raises(ConservationError, match="in=5 but kept=1"):
        commit(store, str(tmp_path / "other"), dict(man, counts=bad.to_dict()))
    assert not (tmp_path / "other" / "_manifest.json").exists()


def test_external_jsonl_and_parquet_inputs(tmp_path):
    store = Storage()
    ext = tmp_path / "ext"
    ext.mkdir()
    with gzip.open(ext / "a.jsonl.gz", "wt") as f:
        for i in range(3):
            f.write(json.dumps({"text": f"doc {i}", "source": "x"}) + "\n")
    pq.write_table(pa.table({"text": ["p"], "id": [7], "url": ["http://u/"]}), ext / "b.parquet")
    (ext / "notes.md").write_text("ignored")
    ds = open_input(store, str(ext))
    assert ds.external and [p.rsplit("/", 1)[1] for p in ds.parts] == ["a.jsonl.gz", "b.parquet"]
    t = read_part(store, ds.parts[0])
    assert t.column("text").to_pylist() == ["doc 0", "doc 1", "doc 2"]
    assert t.column("url").to_pylist() == [None] * 3
    ids = t.column("id").to_pylist()
    assert len(set(ids)) == 3 and ids == read_part(store, ds.parts[0]).column("id").to_pylist()  # stable ids
    assert read_part(store, ds.parts[1]).column("id").to_pylist() == ["7"]
    assert open_input(store, str(ext)).fingerprint == ds.fingerprint
    (ext / "c.jsonl").write_text(json.dumps({"body": "no text column"}) + "\n")
    with pytest.raises(StorageError, match="no 'text' column"):
        read_part(store, str(ext / "c.jsonl"))
    with pytest.raises(StorageError, match="no such dataset"):
        open_input(store, str(tmp_path / "missing"))


def test_safe_key_strips_traversal():
    assert safe_key("../../etc/passwd") == "_.._etc_passwd"
    assert "/" not in safe_key("http://a.b/c?d=e") and not safe_key("..").startswith(".")
