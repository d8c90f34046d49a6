"""Storage for the nightly refresh: conditional writes (S3 If-None-Match / If-Match on moto, a lock on local
disk), and HTTP(S) sources on a real HTTP server on 127.0.0.1: the file's own fault (404) is a ``SourceError`` at
once; the server's (5xx, a download cut short) a ``TransientStorageError`` naming the file, after retries with
backoff and Range resumes."""
from __future__ import annotations

import time

import pytest

from pipeline.core.config import load_config
from pipeline.core.storage import SourceError, Storage, StorageError, TransientStorageError


@pytest.fixture(scope="module")
def roots(s3_server, tmp_path_factory):
    s3_server.make_bucket("cas")
    return {"s3": "s3://cas/state", "local": str(tmp_path_factory.mktemp("state"))}


@pytest.mark.parametrize("where", ["s3", "local"])
def test_conditional_writes(roots, where):
    store, uri = Storage(), f"{roots[where]}/cas/obj.json"
    first = store.write_if(uri, b"one", None)
    assert first is not None
    assert store.write_if(uri, b"two", None) is None            # If-None-Match: * on an existing object
    assert store.write_if(uri, b"two", "bogus-etag") is None    # If-Match with a stale version
    second = store.write_if(uri, b"two", first)
    assert second is not None and store.read_versioned(uri).data == b"two"
    assert store.write_if(uri, b"three", first) is None         # the old version no longer matches
    assert not store.delete_if(uri, first)
    assert store.delete_if(uri, second) and store.read_versioned(uri) is None


def test_http_source_faults_are_source_or_transient_errors(fake_cc, tmp_path):
    data = bytes(range(256)) * 4000
    for name, fault in (("ok", None), ("flaky", "flaky"), ("gone", "missing"), ("down", "5xx"), ("cut", "truncate")):
        fake_cc.publish("CC-NEWS/2099/02", f"{name}.warc.gz", data, fault)
    cfg = load_config(None, [f"storage.http_base_urls=[{fake_cc.base}]", "storage.retries=3"])
    store = Storage(cfg.storage)
    base = fake_cc.base + "crawl-data/CC-NEWS/2099/02/"
    assert store.read_bytes(base + "ok.warc.gz") == data
    assert store.read_bytes(base + "flaky.warc.gz") == data           # a 503, retried with backoff
    with pytest.raises(SourceError, match="HTTP 404"):
        store.read_bytes(base + "gone.warc.gz")
    t0 = time.time()
    with pytest.raises(TransientStorageError, match="failed after 3 attempts.*503"):
        store.read_bytes(base + "down.warc.gz")                        # the server's fault, not the file's
    assert time.time() - t0 > 0.5                                      # backoff between attempts
    with pytest.raises(TransientStorageError, match="kept breaking off at byte 512,000 of 1,024,000"):
        store.read_bytes(base + "cut.warc.gz")                         # resumed with Range, still cut: failed
    with pytest.raises(StorageError, match="not under an allowed HTTP base URL"):
        Storage().read_bytes(base + "ok.warc.gz")
