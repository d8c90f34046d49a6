"""The same extraction against a real S3 endpoint (moto on 127.0.0.1), and a killed run that resumes exactly once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa

from pipeline.core.dataset import read_dataset, read_manifest
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from tests.conftest import ROOT, shared_path
from tests.warcgen import relabel

FILES = ["dolma-sample-0000.warc.gz", "dolma-sample-0001.warc.gz", "example-chunked.warc"]


def _comparable(t: pa.Table) -> pa.Table:
    return t.drop_columns(["warc_file"]).sort_by("id")


def test_extract_on_s3_equals_local_run(spark, s3_server, cfg_factory, tmp_path):
    bucket = s3_server.make_bucket("crawl")
    client = s3_server.client()
    local_in = tmp_path / "in"
    local_in.mkdir()
    for name in FILES:
        data = shared_path("warc", name).read_bytes()
        (local_in / name).write_bytes(data)
        client.put_object(Bucket="crawl", Key=f"warc/{name}", Body=data)
    cfg = cfg_factory("extract.url_filter.enabled=false", f"storage.s3_endpoint={s3_server.endpoint}")
    local = run_stage(cfg, "extract", str(local_in), str(tmp_path / "out"))
    remote = run_stage(cfg, "extract", f"{bucket}/warc/", f"{bucket}/runs/r1/extract")
    store = Storage(cfg.storage)
    assert remote["counts"] == local["counts"]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="crawl", Prefix="runs/r1/extract/")["Contents"]}
    assert "runs/r1/extract/_manifest.json" in keys
    assert all(f"runs/r1/extract/{p['path']}" in keys for p in remote["parts"])
    t_local = read_dataset(store, str(tmp_path / "out"))
    t_remote = read_dataset(store, f"{bucket}/runs/r1/extract")
    assert t_remote.num_rows == local["rows"] == 38
    assert _comparable(t_remote).equals(_comparable(t_local))
    assert read_manifest(store, f"{bucket}/runs/r1/extract")["config_hash"] == local["config_hash"]
    # committed on S3: a second run is a no-op
    again = run_stage(cfg, "extract", f"{bucket}/warc/", f"{bucket}/runs/r1/extract")
    assert again["timings"] == remote["timings"]


def _mdr(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)


def test_killed_run_resumes_and_commits_each_row_once(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    data = shared_path("warc", "news-articles-181.warc.gz").read_bytes()
    small = shared_path("warc", "dolma-sample-0000.warc.gz").read_bytes()
    for i in range(6):  # several files so that some finish before the kill (the same pages, other records)
        (src / f"w{i}.warc.gz").write_bytes(relabel(small if i % 2 else data, i))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    common = ["--set", "extract.url_filter.enabled=false", "--master", "local[2]"]
    proc = _mdr("stage", "extract", "--input", str(src), "--output", str(out), *common, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "_tasks").glob("task-*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, the JVM and its Python workers
    proc.wait()
    done_before = len(list((out / "_tasks").glob("task-*.json")))
    assert 2 <= done_before < 6, "the kill should land mid-stage"
    assert not (out / "_manifest.json").exists()  # nothing committed: readers see no dataset
    proc = _mdr("stage", "extract", "--input", str(src), "--output", str(out), *common, env=env)
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    assert f"resuming: {done_before} of 6 WARC files already done" in log
    t = read_dataset(Storage(), str(out))
    keys = list(zip(t.column("warc_file").to_pylist(), t.column("id").to_pylist()))
    assert len(keys) == len(set(keys))  # every row once
    man = read_manifest(Storage(), str(out))
    per_file = {Path(i["file"]).name: i["kept"] for i in man["stats"]["inputs"]}
    assert per_file == {f"w{i}.warc.gz": (22 if i % 2 else 161) for i in range(6)}
    assert t.num_rows == sum(per_file.values())
    on_disk = sorted(p.name for p in out.glob("part-*.parquet"))
    assert on_disk == sorted(p["path"] for p in man["parts"])  # the killed attempts' leftovers are gone
