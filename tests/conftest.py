"""Shared fixtures: one local Spark session, the shared real data, and a real S3 server (moto) on 127.0.0.1."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.s3server import S3Server

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data; the calling test is skipped with a message when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent: this test needs the shared real data beside the project (../shared/data)")
    return p


@pytest.fixture(scope="module", autouse=True)
def _no_ray_left_running():
    """A module whose tests run the quality stage in-process (``mdr run``) starts a local Ray in this process;
    it is shut down when the module ends, so the next module's own ``ray.init`` gets a clean process."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent: this test needs the shared real data beside the project")
    return SHARED


@pytest.fixture(scope="session")
def cfg_factory():
    from pipeline.core.config import load_config

    def make(*overrides: str, preset: str | None = None):
        return load_config(preset, list(overrides))
    return make


@pytest.fixture(scope="session")
def spark(s3_server):
    """Started after the S3 server, so the JVM and its Python workers inherit its endpoint and test credentials."""
    from pipeline.core.config import load_config
    from pipeline.core.spark import get_spark
    cfg = load_config(None, ["spark.master=local[2]", "spark.driver_memory=1g"])
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fake_cc():
    """A fake Common Crawl (collinfo.json, warc.paths.gz, WARC files) over HTTP on 127.0.0.1."""
    from tests.fake_cc import FakeCC
    cc = FakeCC().start()
    yield cc
    cc.stop()


@pytest.fixture(scope="session")
def s3_server():
    """Credentials and endpoint go into the environment so Spark workers (forked from here) see them too."""
    server = S3Server()
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_ENDPOINT_URL=server.endpoint, AWS_DEFAULT_REGION="us-east-1")
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def pytest_report_header(config):
    return [f"python: {sys.executable}", f"shared data: {SHARED if SHARED.exists() else 'absent (tests using it skip)'}"]
