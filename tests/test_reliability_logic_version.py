"""A stage committed by code whose stage logic differs (another logic version) is re-run, never silently reused."""
from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.cluster.submit import committed_manifest
from pipeline.core.dataset import read_manifest
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from pipeline.stages import STAGES

NO_FILTERS = ("filter.repetition.enabled=false", "filter.quality.enabled=false", "filter.lines.enabled=false")


def test_a_new_logic_version_re_runs_the_stage(spark, cfg_factory, tmp_path, capsys, monkeypatch):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one text", "another text"]}), tmp_path / "in" / "p.parquet")
    cfg, src, out, store = cfg_factory(*NO_FILTERS), str(tmp_path / "in"), str(tmp_path / "out"), Storage()
    old = STAGES["filter"].logic_version
    first = run_stage(cfg, "filter", src, out, spark=spark)
    assert first["logic_version"] == old
    capsys.readouterr()
    assert run_stage(cfg, "filter", src, out, spark=spark)["created"] == first["created"]  # unchanged: skipped
    assert "already committed" in capsys.readouterr().err
    assert committed_manifest(store, cfg, "filter", src, out) is not None

    monkeypatch.setitem(STAGES, "filter", dataclasses.replace(STAGES["filter"], logic_version=old + 1))
    assert committed_manifest(store, cfg, "filter", src, out) is None  # `mdr submit` would run it too
    second = run_stage(cfg, "filter", src, out, spark=spark)
    err = capsys.readouterr().err
    assert "already committed" not in err and second["timings"]["started"] != first["timings"]["started"]
    assert f"logic version {old}" in err and f"this code has logic version {old + 1}" in err
    assert read_manifest(store, out)["logic_version"] == old + 1 and second["config_hash"] != first["config_hash"]
    assert run_stage(cfg, "filter", src, out, spark=spark)["timings"] == second["timings"]  # now reused
