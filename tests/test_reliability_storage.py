"""Faults in storage: the S3 server stops mid-stage, and a local disk that is full."""
import threading
import time

import pytest

from pipeline.dataset import read_dataset, read_manifest
from pipeline.runner import run_stage
from pipeline.storage import Storage, StorageError
from tests.conftest import shared_path
from tests.warcgen import relabel


def test_s3_outage_mid_stage_then_rerun_commits_each_row_once(spark, s3_server, cfg_factory):
    s3_server.make_bucket("flaky")
    client = s3_server.client()
    data = shared_path("warc", "news-articles-181.warc.gz").read_bytes()
    small = shared_path("warc", "dolma-sample-0001.warc.gz").read_bytes()
    for i in range(6):
        client.put_object(Bucket="flaky", Key=f"in/w{i}.warc.gz", Body=relabel(data if i % 3 == 0 else small, i))
    cfg = cfg_factory("extract.url_filter.enabled=false", f"storage.s3_endpoint={s3_server.endpoint}",
                      "storage.retries=3")
    out = "s3://flaky/out/extract"
    outcome = {}

    def stage():
        try:
            outcome["manifest"] = run_stage(cfg, "extract", "s3://flaky/in/", out)
        except Exception as e:  # the stage may fail cleanly while S3 is away
            outcome["error"] = e

    t = threading.Thread(target=stage)
    t.start()
    deadline = time.time() + 300
    while time.time() < deadline and client.list_objects_v2(Bucket="flaky", Prefix="out/extract/_tasks/")["KeyCount"] < 1:
        time.sleep(0.2)
    s3_server.stop()
    time.sleep(4)
    s3_server.start()  # same port, same in-memory buckets
    t.join(timeout=600)
    assert not t.is_alive()
    if "error" in outcome:  # failed cleanly: nothing committed, and the message names the storage problem
        assert read_manifest(Storage(cfg.storage), out) is None
        man = run_stage(cfg, "extract", "s3://flaky/in/", out)
    else:
        man = outcome["manifest"]
    rows = read_dataset(Storage(cfg.storage), out)
    keys = list(zip(rows.column("warc_file").to_pylist(), rows.column("id").to_pylist()))
    assert len(keys) == len(set(keys)) == man["rows"]
    per_file = {i["file"].rsplit("/", 1)[1]: i["kept"] for i in man["stats"]["inputs"]}
    assert per_file == {f"w{i}.warc.gz": (161 if i % 3 == 0 else 15) for i in range(6)}
    assert man["failed_inputs"] == []


def test_unwritable_output_fails_with_a_clear_message(tmp_path):
    store = Storage()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot write"):
        store.write_text(str(blocker / "sub" / "_manifest.json"), "{}")


def test_disk_full_names_the_fix(tmp_path):
    """A write past the file-size limit (the same failure as a full disk) fails with the fix in the message."""
    import subprocess
    import sys
    code = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))\n"
        "from pipeline.storage import Storage, StorageError\n"
        "try:\n"
        f"    Storage().write_bytes({str(tmp_path / 'out' / 'big.bin')!r}, b'x' * 1_000_000)\n"
        "except StorageError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "cannot write" in r.stdout and "free space or choose another output" in r.stdout, r.stdout + r.stderr
    assert not (tmp_path / "out" / "big.bin").exists()  # no half-written file under the final name
