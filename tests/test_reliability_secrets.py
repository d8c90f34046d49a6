"""Credentials are never logged or written: the whole local pipeline runs with its input and output on a real S3
server (moto) and distinctive credentials in the environment, then every artifact is searched for the access key
and the secret key: every object in the buckets (Parquet and gzip decoded too), every file the commands wrote
locally (report, export, staging, temporary and scratch folders, Ray's session logs), the rendered Kubernetes
manifests and spark-submit commands, and everything the commands printed. None may hold either key.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

ACCESS_KEY = "AKIAMDRLEAKCHECK7Q2X"
SECRET_KEY = "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"
NEEDLES = (ACCESS_KEY.encode(), SECRET_KEY.encode())


def _texts(name: str, data: bytes) -> list[bytes]:
    """The bytes as stored, plus what compression hides: gzip members and Parquet cells rendered as text."""
    out = [data]
    if data[:2] == b"\x1f\x8b":
        try:
            out.append(gzip.decompress(data))
        except (OSError, EOFError):
            pass
    if name.endswith(".parquet") or data[:4] == b"PAR1":
        import pyarrow.parquet as pq
        try:
            t = pq.ParquetFile(io.BytesIO(data)).read()
            out.append(repr(t.to_pylist()).encode("utf-8", "replace"))
            out.append(repr(t.schema.metadata).encode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - not Parquet after all: the raw bytes are still searched
            pass
    return out


def _leaks(where: str, name: str, data: bytes) -> list[str]:
    return [f"{where}: {name}" for t in _texts(name, data) for n in NEEDLES if n in t]


@pytest.fixture(scope="module")
def leak_run(s3_server, tmp_path_factory):
    """Runs the commands once with the credentials in their environment; returns what to search."""
    from pipeline.sample.generate import write_sample_blocklist, write_sample_warc
    d = tmp_path_factory.mktemp("secrets")
    scratch = Path(tempfile.mkdtemp(prefix="mdrsec", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    summary = write_sample_warc(str(d / "sample.warc.gz"))
    write_sample_blocklist(str(d / "blocklist"), summary)
    s3_server.make_bucket("leak-in")
    s3_server.make_bucket("leak-out")
    s3_server.client().put_object(Bucket="leak-in", Key="crawl/sample.warc.gz", Body=(d / "sample.warc.gz").read_bytes())
    for sub in ("ray", "tmp", "spark"):
        (scratch / sub).mkdir()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_ENDPOINT_URL=s3_server.endpoint, AWS_DEFAULT_REGION="us-east-1",
               RAY_TMPDIR=str(scratch / "ray"), TMPDIR=str(scratch / "tmp"), SPARK_LOCAL_DIRS=str(scratch / "spark"))
    printed: list[tuple[str, str]] = []

    def mdr(*argv: str, ok: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "pipeline.cli", *argv], cwd=d, env=env, capture_output=True,
                           text=True, timeout=900)
        printed.append((" ".join(argv[:2]), r.stdout + r.stderr))
        if ok:
            assert r.returncode == 0, (argv, r.stdout[-2000:], r.stderr[-4000:])
        return r

    root = "s3://leak-out/run"
    common = ["--set", f"storage.s3_endpoint={s3_server.endpoint}", "--set", "spark.master=local[2]"]
    mdr("run", "--config", "sample", "--input", "s3://leak-in/crawl/sample.warc.gz", "--output", root,
        "--set", f"extract.url_filter.blocklist_uri={d}/blocklist", "--set", "run.audit=full", *common)
    mdr("status", root)
    mdr("report", root)
    r = mdr("explain", root, "https://example.org/does-not-exist", ok=False)
    assert r.returncode == 1
    mdr("export", root, "--output", "s3://leak-out/export")
    mdr("export", root, "--output", str(d / "export-local"))
    mdr("sample", "s3://leak-out/samples/s.warc.gz")
    for target in (["--target", "k8s", "--set", "cluster.credentials_secret=mdr-s3"],
                   ["--target", "spark-submit", "--master", "spark://10.0.0.1:7077", "--staging-dir", str(d / "stage")]):
        mdr("submit", *target, "--input", "s3://leak-in/crawl/", "--output", "s3://leak-out/cluster-run", "--dry-run")
    # credentials offered to the config are refused, and the refusal does not repeat them
    refused = [mdr("config", "--set", f"storage.aws_secret_access_key={SECRET_KEY}", ok=False),
               mdr("run", "--input", "x.warc.gz", "--set", f"storage.access_key={ACCESS_KEY}", ok=False)]
    (d / "creds.yaml").write_text(f"storage:\n  aws_access_key_id: {ACCESS_KEY}\n  aws_secret_access_key: {SECRET_KEY}\n")
    refused.append(mdr("config", "--config", str(d / "creds.yaml"), ok=False))
    yield {"d": d, "scratch": scratch, "s3": s3_server, "printed": printed, "refused": refused}
    shutil.rmtree(scratch, ignore_errors=True)


def test_credentials_in_config_are_refused_without_echo(leak_run):
    for r in leak_run["refused"]:
        assert r.returncode == 2 and "unknown key storage." in r.stderr, r.stderr
        assert ACCESS_KEY not in r.stdout + r.stderr and SECRET_KEY not in r.stdout + r.stderr


def test_no_credential_in_any_object_file_log_or_output(leak_run):
    d, scratch, client = leak_run["d"], leak_run["scratch"], leak_run["s3"].client()
    leaks, searched = [], {"objects": 0, "files": 0, "logs": 0, "outputs": 0}
    for bucket in ("leak-in", "leak-out"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                data = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                leaks += _leaks(f"s3://{bucket}", o["Key"], data)
                searched["objects"] += 1
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="leak-out").get("Contents", [])]
    for expected in ("run/quality/_manifest.json", "run/report.html", "run/report.json", "run/README.md",
                     "export/_export.json", "samples/s.warc.gz"):
        assert expected in keys, (expected, keys[:20])
    for base, kind in ((d, "files"), (scratch, "logs")):
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(".sock"):
                if p.name == "creds.yaml":
                    continue  # the test's own bait, written to see the config refuse it
                try:
                    data = p.read_bytes()
                except OSError:
                    continue
                leaks += _leaks(str(base), str(p.relative_to(base)), data)
                searched[kind] += 1
    assert (d / "export-local" / "_export.json").exists()
    assert any((scratch / "ray").rglob("*.log")) or any((scratch / "ray").rglob("*.out")), "Ray's logs were searched"
    for what, text in leak_run["printed"]:
        leaks += _leaks("printed", what, text.encode())
        searched["outputs"] += 1
    manifests = [t for w, t in leak_run["printed"] if w.startswith("submit")]
    assert any("kind: SparkApplication" in t and "kind: RayJob" in t for t in manifests)
    assert any("spark-submit" in t for t in manifests)
    print(f"searched: {searched}")
    assert searched["objects"] > 20 and searched["files"] > 5 and searched["logs"] > 5
    assert leaks == [], leaks


def test_the_search_finds_a_planted_key(tmp_path):
    """The control: a key in a Parquet cell, inside a gzip member, or in plain text is found."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": [f"x {SECRET_KEY} y"] * 50}), tmp_path / "p.parquet", compression="zstd")
    assert _leaks("t", "p.parquet", (tmp_path / "p.parquet").read_bytes())
    hidden = gzip.compress(b"a" * 1000 + ACCESS_KEY.encode() * 50)
    assert ACCESS_KEY.encode() * 2 not in hidden and len(_leaks("t", "a.gz", hidden)) == 1
    assert _leaks("t", "log", f"env: {ACCESS_KEY}".encode()) and not _leaks("t", "log", b"clean")
