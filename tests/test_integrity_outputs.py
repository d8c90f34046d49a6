"""A stage's output folder under misuse and concurrency (issue 15, items 1-3): cleanup deletes only the stage's own
part files; an output that overlaps the input or another stage's dataset is refused before any work; one writer
per output (a lease in the folder); a skip checks that every listed part is there; a folder that holds mdr part
files but no manifest is never read as an external dataset.

Real components: the session's local Spark, local disk and the moto S3 server.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.config import ConfigError
from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, open_input, part_path, read_dataset
from pipeline.core.storage import Storage, StorageError

SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])


def committed(root: str, stage: str, n: int = 6, parts: int = 2, offset: int = 0) -> dict:
    """A committed mdr dataset of ``n`` distinct documents in ``parts`` part files."""
    store = Storage()
    infos = []
    for p in range(parts):
        ids = [f"{stage}-{i + offset}" for i in range(p, n, parts)]
        w = PartWriter(store, root, part_path(p, f"{p:08x}"), SCHEMA)
        w.write(pa.table({"id": ids, "url": [f"https://e{i}.org/{i}" for i in ids],
                          "text": [f"document {i} has its own words here and there" for i in ids]}, schema=SCHEMA))
        infos.append(w.close())
    man = build_manifest(stage=stage, config_hash="c0ffee", input_desc={}, parts=infos, rejects=[], schema=SCHEMA,
                         counts=Counts(n, n), failed_inputs=[], started=time.time())
    commit(store, root, man)
    return man


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


# --------------------------------------------------------------------------- item 1: cleanup and overlap

def test_output_containing_the_input_is_refused_and_nothing_is_deleted(tmp_path, cfg_factory, spark):
    """The reproduction: `mdr stage dedup_exact --input out/dedup_fuzzy --output out` deleted out/*'s parts."""
    from pipeline.run.runner import run_stage
    out = tmp_path / "out"
    committed(str(out / "extract"), "extract")
    committed(str(out / "dedup_fuzzy"), "dedup_fuzzy")
    before = files(out)
    with pytest.raises(ConfigError) as e:
        run_stage(cfg_factory(), "dedup_exact", str(out / "dedup_fuzzy"), str(out), spark=spark)
    msg = str(e.value)
    assert str(out) in msg and str(out / "dedup_fuzzy") in msg and "contains its input" in msg
    assert files(out) == before


@pytest.mark.parametrize("case", ["inside_input", "is_input", "is_input_spelled_otherwise", "other_stage",
                                  "inside_other_stage", "holds_other_stage"])
def test_overlapping_outputs_are_refused_before_any_work(tmp_path, cfg_factory, spark, case):
    from pipeline.run.runner import run_stage
    out = tmp_path / "out"
    committed(str(out / "dedup_fuzzy"), "dedup_fuzzy")
    committed(str(out / "extract"), "extract")
    output = {"inside_input": out / "dedup_fuzzy" / "exact", "is_input": out / "dedup_fuzzy",
              "is_input_spelled_otherwise": f"file://{out}/extract/../dedup_fuzzy/",
              "other_stage": out / "extract", "inside_other_stage": out / "extract" / "x",
              "holds_other_stage": out / "extract" / ".."}[case]
    if case == "holds_other_stage":
        output = tmp_path / "elsewhere"
        committed(str(output / "old" / "filter"), "filter")
    before = files(tmp_path)
    with pytest.raises(ConfigError) as e:
        run_stage(cfg_factory(), "dedup_exact", str(out / "dedup_fuzzy"), str(output), spark=spark)
    assert str(output).rstrip("/") in str(e.value)
    assert files(tmp_path) == before


def test_part_names_of_every_writer_match_the_cleanup_pattern():
    from pipeline.core.dataset import PART_NAME
    for name in ["part-00003-r0a1b2c3d-a0-9f8e7d.parquet", "part-123456-r0a1b2c3d-a12-9f8e7d.parquet",
                 "part-00001-r0a1b2c3d-s1234-0123abcd.parquet", "part-00007-deadbeef.parquet"]:
        assert PART_NAME.match(name), name
    for name in ["part-00000-3f0c1d2e-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet", "train-00000.parquet",
                 "part-00000-t.parquet", "part-0001-deadbeef.parquet"]:
        assert not PART_NAME.match(name), name


def test_cleanup_deletes_only_the_stages_own_part_files(tmp_path, cfg_factory, spark):
    from pipeline.run.runner import run_stage
    src, out = tmp_path / "in", tmp_path / "exact"
    committed(str(src), "dedup_fuzzy")
    foreign = ["notes/keep.parquet", "export.parquet", "part-00000-3f0c1d2e-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet",
               "sub/part-00001-0123abcd.parquet", "_rejects/mine.parquet"]
    for rel in foreign:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"x": [1]}), out / rel)
    stray = ["part-00007-deadbeef.parquet", "_rejects/part-00007-deadbeef.parquet",  # an older attempt of this stage
             "_checkpoints/0badc0de/cc-round-2/part-00000-r0badc0de-a0-abcdef.parquet"]  # a crashed run's checkpoint
    for rel in stray:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"x": [1]}), out / rel)
    man = run_stage(cfg_factory(), "dedup_exact", str(src), str(out), spark=spark)
    left = files(out)
    assert set(foreign) <= left
    assert not set(stray) & left
    listed = {p["path"] for p in man["parts"] + man["rejects"]}
    assert listed <= left


# --------------------------------------------------------------------------- item 2: one writer per output

def test_a_live_run_holding_the_output_makes_a_second_run_refuse(tmp_path, cfg_factory, spark):
    from pipeline.core.lease import Lease, LeaseHeld
    from pipeline.run.runner import run_stage
    src, out = tmp_path / "in", tmp_path / "exact"
    committed(str(src), "dedup_fuzzy")
    other = Lease(Storage(), str(out / "_lease.json"), 600, "run-other").acquire()  # this process: alive
    try:
        with pytest.raises(LeaseHeld) as e:
            run_stage(cfg_factory(), "dedup_exact", str(src), str(out), spark=spark)
        assert "run-other" in str(e.value) and str(out) in str(e.value)
        assert not (out / "_manifest.json").exists()
    finally:
        other.release()
    man = run_stage(cfg_factory(), "dedup_exact", str(src), str(out), spark=spark)  # released: it runs
    assert man["counts"]["in"] == 6
    assert not (out / "_lease.json").exists() or json.loads((out / "_lease.json").read_text()).get("released")


def test_the_lease_of_a_dead_local_process_is_taken_over_at_once(tmp_path, cfg_factory, spark):
    from pipeline.run.runner import run_stage
    src, out = tmp_path / "in", tmp_path / "exact"
    committed(str(src), "dedup_fuzzy")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out.mkdir()
    now = time.time()
    (out / "_lease.json").write_text(json.dumps({
        "format": "mdr.lease/1", "run_id": "run-crashed", "owner": f"{socket.gethostname()}:{dead.pid}:x",
        "host": socket.gethostname(), "pid": dead.pid, "boot_id": _boot_id(), "ttl_s": 600,
        "acquired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "renewed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))}))
    man = run_stage(cfg_factory(), "dedup_exact", str(src), str(out), spark=spark)
    assert man["counts"]["in"] == 6


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def test_a_skip_checks_every_listed_part_and_reruns_when_one_is_missing(tmp_path, cfg_factory, spark, capsys):
    from pipeline.run.runner import run_stage
    src, out = tmp_path / "in", tmp_path / "exact"
    committed(str(src), "dedup_fuzzy")
    cfg = cfg_factory()
    first = run_stage(cfg, "dedup_exact", str(src), str(out), spark=spark)
    capsys.readouterr()
    assert run_stage(cfg, "dedup_exact", str(src), str(out), spark=spark)["created"] == first["created"]
    assert "already committed" in capsys.readouterr().err
    victim = first["parts"][0]["path"]
    (out / victim).unlink()
    again = run_stage(cfg, "dedup_exact", str(src), str(out), spark=spark)
    err = capsys.readouterr().err
    assert "already committed" not in err and victim in err and "missing" in err
    assert all((out / p["path"]).stat().st_size == p["bytes"] for p in again["parts"] + again["rejects"])
    assert read_dataset(Storage(), str(out)).num_rows == first["rows"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_the_manifest_is_written_only_over_the_version_the_run_started_from(tmp_path, s3_server, where):
    from pipeline.core.dataset import ManifestConflict, read_manifest_versioned
    store = Storage()
    if where == "s3":
        s3_server.make_bucket("conflict")
        root = "s3://conflict/exact"
    else:
        root = str(tmp_path / "exact")
    committed(root, "dedup_exact")
    _, seen = read_manifest_versioned(store, root)
    committed(root, "dedup_exact", offset=100)  # another run commits meanwhile
    man = build_manifest(stage="dedup_exact", config_hash="late", input_desc={}, parts=[], rejects=[], schema=SCHEMA,
                         counts=Counts(), failed_inputs=[], started=time.time())
    with pytest.raises(ManifestConflict) as e:
        commit(store, root, man, expect=seen)
    assert root in str(e.value)
    assert json.loads(store.read_text(f"{root}/_manifest.json"))["config_hash"] == "c0ffee"


# --------------------------------------------------------------------------- item 3: unfinished stages as input

def test_a_folder_with_mdr_parts_but_no_manifest_is_refused_as_input(tmp_path):
    store = Storage()
    crashed = tmp_path / "out" / "filter"
    committed(str(crashed), "filter")
    (crashed / "_manifest.json").unlink()  # crashed before its commit: parts of several attempts, no manifest
    with pytest.raises(StorageError) as e:
        open_input(store, str(crashed))
    assert "did not finish" in str(e.value) and "re-run" in str(e.value) and "filter" in str(e.value)
    only_tasks = tmp_path / "out" / "dedup_exact"
    (only_tasks / "_tasks").mkdir(parents=True)
    (only_tasks / "_tasks" / "task-00000.json").write_text("{}")
    pq.write_table(pa.table({"text": ["x"]}), only_tasks / "something.parquet")
    with pytest.raises(StorageError, match="did not finish"):
        open_input(store, str(only_tasks))
    leased = tmp_path / "out" / "quality"
    leased.mkdir()
    (leased / "_lease.json").write_text("{}")
    pq.write_table(pa.table({"text": ["x"]}), leased / "data.parquet")
    with pytest.raises(StorageError, match="did not finish"):
        open_input(store, str(leased))


def test_a_run_root_is_refused_as_input_naming_its_stages(tmp_path):
    out = tmp_path / "out"
    committed(str(out / "extract"), "extract")
    committed(str(out / "filter"), "filter")
    with pytest.raises(StorageError) as e:
        open_input(Storage(), str(out))
    assert "extract" in str(e.value) and "filter" in str(e.value) and str(out / "filter") in str(e.value)


def test_external_datasets_with_their_own_part_names_are_still_read(tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    pq.write_table(pa.table({"text": ["a b c"]}), ext / "part-00000-3f0c1d2e-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet")
    pq.write_table(pa.table({"text": ["d e f"]}), ext / "train-00000-of-00001.parquet")
    assert open_input(Storage(), str(ext)).external
    assert read_dataset(Storage(), str(ext)).num_rows == 2


def test_two_concurrent_commands_on_one_output_one_refuses_and_the_commit_is_whole(tmp_path):
    """Two real `mdr stage extract` processes on one output: the second exits 4 naming the first's run; the first
    commits a manifest whose every part exists with its size."""
    from pipeline.sample.generate import write_sample_blocklist, write_sample_warc
    write_sample_blocklist(str(tmp_path / "blocklist"), write_sample_warc(str(tmp_path / "sample.warc.gz")))
    out = tmp_path / "out" / "extract"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    argv = [sys.executable, "-m", "pipeline.cli", "stage", "extract", "--config", "sample", "--input",
            str(tmp_path / "sample.warc.gz"), "--output", str(out), "--set", "spark.master=local[1]",
            "--set", f"extract.url_filter.blocklist_uri={tmp_path / 'blocklist'}"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "_lease.json").exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    holder = json.loads((out / "_lease.json").read_text())["run_id"]
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 4, second.stderr[-2000:]
    assert f"locked by run {holder}" in second.stderr and "another stage extract run is writing this output" in second.stderr
    man = json.loads((out / "_manifest.json").read_text())
    assert man["parts"] and all((out / p["path"]).stat().st_size == p["bytes"] for p in man["parts"] + man["rejects"])
    assert all(f"-r{holder}-" in p["path"] for p in man["parts"] + man["rejects"])
    assert json.loads((out / "_lease.json").read_text()).get("released")  # released, generation kept


def test_a_store_that_ignores_conditional_writes_is_refused_before_the_lease(tmp_path, s3_server, cfg_factory):
    """An S3 endpoint that drops If-None-Match/If-Match would make the lease last-writer-wins: `mdr stage` refuses
    it (exit 3) with a message, after one probe, and writes no lease or data there."""
    from tests.s3server import FaultyProxy
    s3_server.make_bucket("nocas")
    proxy = FaultyProxy(s3_server.endpoint).start()
    proxy.strip_conditions = True
    try:
        store = Storage(cfg_factory(f"storage.s3_endpoint={proxy.endpoint}").storage)
        with pytest.raises(StorageError, match=r"ignores conditional writes \(If-None-Match\)"):
            store.check_conditional("s3://nocas/out/extract/_lease.json")
        committed(str(tmp_path / "in"), "dedup_fuzzy")
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1", AWS_ENDPOINT_URL=proxy.endpoint)
        r = subprocess.run([sys.executable, "-m", "pipeline.cli", "stage", "dedup_exact", "--input", str(tmp_path / "in"),
                            "--output", "s3://nocas/out/exact", "--set", f"storage.s3_endpoint={proxy.endpoint}"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 3 and "ignores conditional writes" in r.stderr, r.stderr[-2000:]
        keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="nocas").get("Contents", [])]
        assert all(k.endswith("/") for k in keys), keys  # at most the empty folder marker of the write probe
    finally:
        proxy.stop()
    Storage().check_conditional("s3://nocas/out/extract/_lease.json")  # the real server honours them
