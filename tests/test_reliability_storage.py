"""Faults in storage: the S3 server stops mid-stage; S3 throttles (503 SlowDown) some WARC files through a
fault-injecting proxy in front of moto; an object is missing; a local disk that is full. A storage outage is never
a failed input: it is retried, then fails the task and the stage. Only a broken or missing file is a failed input,
and `mdr stage extract --retry-failed` re-runs just those once they are fixed."""
import json
import threading
import time

import pytest

from pipeline.core.dataset import TASKS_DIR, read_dataset, read_manifest
from pipeline.core.storage import Storage, StorageError, join
from pipeline.run.runner import run_stage
from tests.conftest import shared_path
from tests.s3server import FaultyProxy
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
        "from pipeline.core.storage import Storage, StorageError\n"
        "try:\n"
        f"    Storage().write_bytes({str(tmp_path / 'out' / 'big.bin')!r}, b'x' * 1_000_000)\n"
        "except StorageError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "cannot write" in r.stdout and "free space or choose another output" in r.stdout, r.stdout + r.stderr
    assert not (tmp_path / "out" / "big.bin").exists()  # no half-written file under the final name


SMALL_KEPT = 15  # documents dolma-sample-0001.warc.gz gives with the URL filter off


@pytest.fixture
def proxy(s3_server):
    p = FaultyProxy(s3_server.endpoint).start()
    yield p
    p.stop()


def _four_warcs(s3_server, bucket: str) -> list[str]:
    s3_server.make_bucket(bucket)
    small = shared_path("warc", "dolma-sample-0001.warc.gz").read_bytes()
    keys = [f"in/w{i}.warc.gz" for i in range(4)]
    for i, k in enumerate(keys):  # four files of the same pages, each with its own record ids
        s3_server.client().put_object(Bucket=bucket, Key=k, Body=relabel(small, i))
    return keys


def _per_file(man: dict) -> dict:
    return {i["file"].rsplit("/", 1)[1]: i["kept"] for i in man["stats"]["inputs"]}


def _through(proxy, cfg_factory, *extra):
    """Every request of the stage goes through the proxy; a failed-input share that would let 2 of 4 files fail."""
    return cfg_factory("extract.url_filter.enabled=false", f"storage.s3_endpoint={proxy.endpoint}",
                       "run.max_failed_input_share=0.5", *extra)


def test_s3_throttling_on_two_warcs_is_retried_not_a_failed_input(spark, s3_server, proxy, cfg_factory):
    """4 throttled requests on each of 2 files: more than one open's retries; retried with backoff, all committed."""
    keys = _four_warcs(s3_server, "throttled")
    for k in keys[1:3]:
        proxy.fail("throttled", k, requests=4, after=1)  # the driver's size check passes, the tasks' opens do not
    cfg = _through(proxy, cfg_factory, "storage.retries=3")
    man = run_stage(cfg, "extract", "s3://throttled/in/", "s3://throttled/out/extract")
    assert man["failed_inputs"] == []
    assert _per_file(man) == {f"w{i}.warc.gz": SMALL_KEPT for i in range(4)}
    assert man["rows"] == 4 * SMALL_KEPT == read_dataset(Storage(cfg.storage), "s3://throttled/out/extract").num_rows
    assert {k: proxy.faulted[f"/throttled/{k}"] for k in keys} == {keys[0]: 0, keys[1]: 4, keys[2]: 4, keys[3]: 0}


def test_s3_outage_on_two_warcs_fails_the_stage_then_a_rerun_commits_every_file(spark, s3_server, proxy, cfg_factory):
    """503 on 2 files until the outage ends: the stage fails naming the storage, commits nothing; the re-run after
    the outage reads only the files not done yet and commits all of them."""
    keys = _four_warcs(s3_server, "outage")
    for k in keys[1:3]:
        proxy.fail("outage", k, after=1)  # from after the driver's size check until cleared
    cfg = _through(proxy, cfg_factory, "storage.retries=2")
    store, out = Storage(cfg.storage), "s3://outage/out/extract"
    with pytest.raises(StorageError) as err:
        run_stage(cfg, "extract", "s3://outage/in/", out)
    msg = str(err.value)
    assert "TransientStorageError" in msg and "503" in msg and "nothing was committed" in msg, msg
    assert ("w1.warc.gz" in msg or "w2.warc.gz" in msg) and read_manifest(store, out) is None
    faulted = max(proxy.faulted[f"/outage/{k}"] for k in keys[1:3])
    assert faulted >= 2 * 2 * 4, faulted  # each request retried, each open retried, each task attempt retried
    done = {json.loads(store.read_text(u))["input"] for u in store.list_files(join(out, TASKS_DIR))}
    assert not any(d.endswith(("w1.warc.gz", "w2.warc.gz")) for d in done)  # no marker for an unread file
    proxy.clear()
    before = dict(proxy.served)
    man = run_stage(cfg, "extract", "s3://outage/in/", out)
    assert man["failed_inputs"] == []
    assert _per_file(man) == {f"w{i}.warc.gz": SMALL_KEPT for i in range(4)}
    for d in done:  # finished tasks were kept, not read again
        path = "/" + d.split("://", 1)[1]
        assert proxy.served[path] == before.get(path, 0), d


def test_a_missing_object_is_a_failed_input(spark, s3_server, proxy, cfg_factory):
    keys = _four_warcs(s3_server, "holes")
    listing = "".join(f"s3://holes/{k}\n" for k in keys[:3]) + "s3://holes/in/gone.warc.gz\n"
    s3_server.client().put_object(Bucket="holes", Key="list.paths", Body=listing.encode())
    cfg = _through(proxy, cfg_factory, "storage.retries=2")
    man = run_stage(cfg, "extract", "s3://holes/list.paths", "s3://holes/out/extract")
    assert [f["file"] for f in man["failed_inputs"]] == ["s3://holes/in/gone.warc.gz"]
    assert "no such file" in man["failed_inputs"][0]["error"]
    assert _per_file(man) == {"w0.warc.gz": SMALL_KEPT, "w1.warc.gz": SMALL_KEPT, "w2.warc.gz": SMALL_KEPT,
                              "gone.warc.gz": 0}


def test_retry_failed_reruns_only_the_failed_input(spark, cfg_factory, tmp_path, capsys):
    """A committed extract with one broken WARC: `mdr status` names it and the command to retry; once the file is
    restored, `mdr stage extract --retry-failed` runs only that task and commits a manifest with every file."""
    from pipeline.cli import build_parser, main
    from pipeline.reports.report import print_status
    good = shared_path("warc", "dolma-sample-0001.warc.gz").read_bytes()
    src, root = tmp_path / "warcs", tmp_path / "run"
    src.mkdir()
    for i in range(4):
        (src / f"w{i}.warc.gz").write_bytes(relabel(good, i))
    (src / "w2.warc.gz").write_bytes(b"<html>this is not a WARC file</html>\n" * 50)
    sets = ["extract.url_filter.enabled=false", "run.max_failed_input_share=0.5"]
    cfg = cfg_factory(*sets)
    out = str(root / "extract")
    first = run_stage(cfg, "extract", str(src), out)
    assert [f["file"].rsplit("/", 1)[1] for f in first["failed_inputs"]] == ["w2.warc.gz"]
    assert first["rows"] == 3 * SMALL_KEPT

    capsys.readouterr()
    print_status(str(root), cfg)
    status = capsys.readouterr().out
    assert "extract: 1 failed input" in status and "w2.warc.gz" in status, status
    assert f"mdr stage extract --input {src} --output {out} --retry-failed" in status, status

    (src / "w2.warc.gz").write_bytes(relabel(good, 2))  # fixed: downloaded again
    args = ["stage", "extract", "--input", str(src), "--output", out, "--retry-failed"]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    man = read_manifest(Storage(), out)
    assert man["failed_inputs"] == [] and _per_file(man) == {f"w{i}.warc.gz": SMALL_KEPT for i in range(4)}
    assert man["rows"] == 4 * SMALL_KEPT == read_dataset(Storage(), out).num_rows
    c, c0 = man["counts"], first["counts"]
    assert c["in"] == c["kept"] + sum(c["removed"].values()) and c["kept"] == 4 * SMALL_KEPT
    kept_parts = {p["path"] for p in first["parts"]}
    assert kept_parts < {p["path"] for p in man["parts"]} and len(man["parts"]) == len(first["parts"]) + 1
    assert c["in"] == c0["in"] + c0["in"] // 3  # the three good files' counts kept, the restored file's added
    assert not (root / "extract" / TASKS_DIR).exists()  # nothing left to retry: the task markers are gone
    capsys.readouterr()
    print_status(str(root), cfg)
    assert "--retry-failed" not in capsys.readouterr().out
    assert build_parser().parse_args(["run", "--retry-failed"]).retry_failed
