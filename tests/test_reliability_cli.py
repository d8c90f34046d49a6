"""Bad configuration and usage, command by command: every `mdr` command given a wrong URI, a missing bucket, bad
credentials, an unreachable store, a corrupt model or a value out of range fails before any processing, with one
line that says what to fix and the documented exit code (0 ok, 1 a stage failed, 2 bad usage or configuration,
3 storage or model unreachable/unreadable). Also: HTTP is fetched only under storage.http_base_urls (redirects
included), and the names mdr writes never come from the URLs or file names of its input.

Real components: `mdr` runs as a subprocess against a moto S3 server (the session's, any credentials accepted)
and a second moto server, in its own process, that enforces authentication (so every key is a bad key).
"""
from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import ROOT
from tests.s3server import free_port, wait_for_port

BUCKET = "clidata"
GOOD_MODEL = ROOT / "udfs" / "models" / "quality-demo.ftz"


@pytest.fixture(scope="module")
def auth_s3():
    """A moto S3 server that checks signatures against its (empty) IAM: any access key is refused."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 60)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def world(s3_server, auth_s3, tmp_path_factory):
    """Files the commands are pointed at: a sample WARC (local and in S3), a committed dataset in S3, good, corrupt
    and truncated models, training texts, a paths listing naming a host outside the allowed HTTP bases."""
    from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path
    from pipeline.sample.generate import write_sample_blocklist, write_sample_warc
    from pipeline.core.storage import Storage
    d = tmp_path_factory.mktemp("cli")
    summary = write_sample_warc(str(d / "sample.warc.gz"))
    write_sample_blocklist(str(d / "blocklist"), summary)
    s3_server.make_bucket(BUCKET)
    client = s3_server.client()
    client.put_object(Bucket=BUCKET, Key="in/sample.warc.gz", Body=(d / "sample.warc.gz").read_bytes())
    (d / "bad.ftz").write_bytes(b"this is not a fastText model at all")
    (d / "truncated.ftz").write_bytes(GOOD_MODEL.read_bytes()[:5000])
    client.put_object(Bucket=BUCKET, Key="models/bad.ftz", Body=b"garbage" * 10)
    (d / "pos.txt").write_text("\n".join(f"a long and careful article about topic {i} with many words" for i in range(40)))
    (d / "neg.txt").write_text("\n".join(f"buy now click here {i}" for i in range(40)))
    (d / "listing.paths").write_text("http://127.0.0.1:9/crawl/evil.warc.gz\n")
    (d / "afile").write_text("x")
    (d / "bad.yaml").write_text("run: [unclosed\n")
    store = Storage()
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    root = f"s3://{BUCKET}/run/dedup_exact"
    w = PartWriter(store, root, part_path(0, "t"), schema)
    w.write(pa.table({"id": ["d1", "d2"], "url": ["https://e.org/1", "https://e.org/2"],
                      "text": ["one document", "another document"]}, schema=schema))
    commit(store, root, build_manifest(stage="dedup_exact", config_hash="x", input_desc={}, parts=[w.close()],
                                       rejects=[], schema=schema, counts=Counts(2, 2), failed_inputs=[],
                                       started=time.time()))
    return {"d": d, "s3": s3_server, "auth": auth_s3, "dead": f"http://127.0.0.1:{free_port()}"}


def mdr(world, argv: list[str], store: str = "good", timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="AKIAMDRCLITEST000001", AWS_SECRET_ACCESS_KEY="cli/Test+Secret/0123456789",
               AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL={"good": world["s3"].endpoint, "badcreds": world["auth"], "dead": world["dead"]}[store])
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *argv], cwd=world["d"], env=env, capture_output=True,
                          text=True, timeout=timeout)


def s3_keys(world, prefix: str) -> list[str]:
    r = world["s3"].client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in r.get("Contents", [])]


S3 = f"s3://{BUCKET}"
WARC = "sample.warc.gz"          # relative to the fixture folder (the commands run there)
RUN = f"{S3}/run"
FAST = ["--set", "storage.retries=1"]

# (id, argv, store, exit code, what the message must say); every case must fail before any processing
CASES = [
    # mdr run
    ("run-missing-input", ["run", "--input", "nowhere/x.warc.gz", "--output", "out1"], "good", 3,
     r"nowhere/x\.warc\.gz: no such WARC file; check the input path"),
    ("run-input-scheme", ["run", "--input", "ftp://host/x.warc.gz", "--output", "out1"], "good", 3,
     r"unsupported scheme 'ftp'; use a local path, file://, s3://, gs:// or https://"),
    ("run-output-scheme", ["run", "--input", WARC, "--output", "hdfs://b/out"], "good", 3,
     r"hdfs://b/out: unsupported scheme 'hdfs'"),
    ("run-output-http", ["run", "--input", WARC, "--output", "https://data.commoncrawl.org/out"], "good", 3,
     r"HTTP\(S\) is read-only; write to a path or s3:// URI instead"),
    ("run-output-is-file", ["run", "--input", WARC, "--output", "afile"], "good", 3, r"afile: is a file, not a folder"),
    ("run-output-bucket", ["run", "--input", WARC, "--output", "s3://nobucket/out"], "good", 3,
     r"s3://nobucket/out: bucket 'nobucket' does not exist .*create it or fix the URI"),
    ("run-input-bucket", ["run", "--input", "s3://nobucket/in/x.warc.gz", "--output", "out1"], "good", 3,
     r"s3://nobucket/in/x\.warc\.gz: no such WARC file"),
    ("run-bad-credentials-in", ["run", "--input", f"{S3}/in/sample.warc.gz", "--output", "out1"], "badcreds", 3,
     r"access denied: check the credentials"),
    ("run-bad-credentials-out", ["run", "--input", WARC, "--output", f"{S3}/out"], "badcreds", 3,
     r"s3://clidata/out: cannot reach it: .*access denied: check the credentials"),
    ("run-store-unreachable", ["run", "--input", WARC, "--output", f"{S3}/out"], "dead", 3,
     r"cannot reach the object store: check storage.s3_endpoint / AWS_ENDPOINT_URL"),
    ("run-corrupt-quality-model", ["run", "--input", WARC, "--output", "out1", "--set", "quality.model_uri=bad.ftz"],
     "good", 3, r"model bad\.ftz: not a fastText model \(bad file header\); point quality.model_uri at"),
    ("run-truncated-quality-model", ["run", "--input", WARC, "--output", "out1",
                                     "--set", "quality.model_uri=truncated.ftz"], "good", 3,
     r"truncated\.ftz: truncated fastText file .*download it again"),
    ("run-missing-quality-model", ["run", "--input", WARC, "--output", "out1", "--set", "quality.model_uri=no.ftz"],
     "good", 3, r"model no\.ftz: no such file; check quality.model_uri"),
    ("run-corrupt-langid-model", ["run", "--input", WARC, "--output", "out1",
                                  "--set", "extract.langid.model_uri=bad.ftz"], "good", 3,
     r"model bad\.ftz: not a fastText model"),
    ("run-missing-blocklist", ["run", "--config", "sample", "--input", WARC, "--output", "out1",
                               "--set", "extract.url_filter.blocklist_uri=nolists"], "good", 3,
     r"nolists: no such file or folder; fix extract.url_filter.blocklist_uri"),
    ("run-blocklist-category", ["run", "--input", WARC, "--output", "out1", "--set", "extract.url_filter.blocklist_uri=blocklist",
                                "--set", "extract.url_filter.blocklist_categories=[nosuchcat]"], "good", 3,
     r"no 'domains' or 'urls' list for blocklist category 'nosuchcat'"),
    ("run-threshold-range", ["run", "--input", WARC, "--output", "out1", "--set", "quality.threshold=1.5"], "good", 2,
     r"configuration error: quality.threshold: 1.5 is out of range; allowed: \[0.0, 1.0\]"),
    ("run-langid-score-range", ["run", "--input", WARC, "--output", "out1", "--set", "extract.langid.min_score=-0.1"],
     "good", 2, r"extract.langid.min_score: -0.1 is out of range"),
    ("run-bad-type", ["run", "--input", WARC, "--output", "out1", "--set", "ray.actors=many"], "good", 2,
     r"ray.actors: expected an integer, got 'many'"),
    ("run-unknown-stage", ["run", "--input", WARC, "--output", "out1", "--stages", "extract,polish"], "good", 2,
     r"polish"),
    ("run-no-input", ["run", "--output", "out1"], "good", 2, r"pass --input URI"),
    ("run-unknown-flag", ["run", "--input", WARC, "--outptu", "x"], "good", 2, r"unrecognized arguments: --outptu"),
    ("run-http-not-allowed", ["run", "--input", "http://127.0.0.1:9/x.warc.gz", "--output", "out1"], "good", 3,
     r"not under an allowed HTTP base URL \(https://data.commoncrawl.org/.*\); add its base to storage.http_base_urls"),
    ("run-listing-entry-not-allowed", ["run", "--input", "listing.paths", "--output", "out1"], "good", 3,
     r"http://127.0.0.1:9/crawl/evil.warc.gz: not under an allowed HTTP base URL"),
    # mdr stage
    ("stage-missing-dataset", ["stage", "filter", "--input", "s3://nobucket/run/extract", "--output", "out2"], "good", 3,
     r"s3://nobucket/run/extract: no such dataset"),
    ("stage-unknown", ["stage", "polish", "--input", WARC, "--output", "out2"], "good", 2,
     r"stage 'polish' is not available; available stages: extract"),
    ("stage-output-bucket", ["stage", "quality", "--input", f"{RUN}/dedup_exact", "--output", "s3://nobucket/q"], "good",
     3, r"bucket 'nobucket' does not exist"),
    ("stage-corrupt-model", ["stage", "quality", "--input", f"{RUN}/dedup_exact", "--output", "out2",
                             "--set", "quality.model_uri=bad.ftz"], "good", 3, r"not a fastText model"),
    ("stage-corrupt-model-s3", ["stage", "quality", "--input", f"{RUN}/dedup_exact", "--output", "out2",
                                "--set", f"quality.model_uri={S3}/models/bad.ftz"], "good", 3,
     r"s3://clidata/models/bad.ftz: not a fastText model"),
    ("stage-threshold-range", ["stage", "quality", "--input", f"{RUN}/dedup_exact", "--output", "out2",
                               "--set", "quality.threshold=-0.5"], "good", 2, r"quality.threshold: -0.5 is out of range"),
    ("stage-bad-credentials", ["stage", "extract", "--input", f"{S3}/in/", "--output", "out2"], "badcreds", 3,
     r"access denied"),
    # mdr status / report / explain / export
    ("status-missing-root", ["status", "nowhere"], "good", 3, r"nowhere: no stage output here .*check the path"),
    ("status-missing-bucket", ["status", "s3://nobucket/run"], "good", 3, r"no stage output here"),
    ("status-scheme", ["status", "hdfs://b/run"], "good", 3, r"unsupported scheme 'hdfs'"),
    ("status-bad-credentials", ["status", RUN], "badcreds", 3, r"access denied: check the credentials"),
    ("report-missing-root", ["report", "nowhere"], "good", 3, r"nowhere: no committed stage output"),
    ("report-bad-credentials", ["report", RUN], "badcreds", 3, r"access denied"),
    ("report-unreachable", ["report", RUN, "--set", "storage.retries=1"], "dead", 3, r"cannot reach the object store"),
    ("explain-missing-root", ["explain", "nowhere", "d1"], "good", 3, r"no committed stage output"),
    ("explain-bad-credentials", ["explain", RUN, "d1"], "badcreds", 3, r"access denied"),
    ("export-output-bucket", ["export", RUN, "--output", "s3://nobucket/exp"], "good", 3,
     r"s3://nobucket/exp: bucket 'nobucket' does not exist"),
    ("export-output-http", ["export", RUN, "--output", "https://example.org/exp"], "good", 3, r"HTTP\(S\) is read-only"),
    ("export-missing-root", ["export", "nowhere", "--output", "exp"], "good", 3, r"no committed stage output"),
    ("export-bad-credentials", ["export", RUN, "--output", "exp"], "badcreds", 3, r"access denied"),
    # mdr sample / config
    ("sample-bucket", ["sample", "s3://nobucket/s.warc.gz"], "good", 3, r"bucket 'nobucket' does not exist"),
    ("sample-scheme", ["sample", "hdfs://b/s.warc.gz"], "good", 3, r"unsupported scheme 'hdfs'"),
    ("sample-bad-credentials", ["sample", f"{S3}/s.warc.gz"], "badcreds", 3, r"access denied"),
    ("sample-under-a-file", ["sample", "afile/s.warc.gz"], "good", 3, r"afile: is a file, not a folder"),
    ("config-range", ["config", "--set", "quality.threshold=2"], "good", 2, r"quality.threshold: 2.0 is out of range"),
    ("config-preset", ["config", "--config", "nosuchpreset"], "good", 2,
     r"unknown preset 'nosuchpreset'; available presets: .*refinedweb"),
    ("config-yaml", ["config", "--config", "bad.yaml"], "good", 2, r"bad.yaml: not valid YAML"),
    ("config-unknown-key", ["config", "--set", "storage.secret_key=hunter2hunter2"], "good", 2,
     r"unknown key storage.secret_key; allowed keys in storage"),
    ("config-set-syntax", ["config", "--set", "quality.threshold"], "good", 2, r"expected key=value"),
    # mdr train-quality
    ("train-threshold", ["train-quality", "--positive", "pos.txt", "--negative", "neg.txt", "--output", "m.ftz",
                         "--threshold", "1.5"], "good", 2, r"--threshold 1.5: out of range; allowed: \[0.0, 1.0\]"),
    ("train-holdout", ["train-quality", "--positive", "pos.txt", "--negative", "neg.txt", "--output", "m.ftz",
                       "--holdout", "0"], "good", 2, r"--holdout 0.0: out of range"),
    ("train-epoch", ["train-quality", "--positive", "pos.txt", "--negative", "neg.txt", "--output", "m.ftz",
                     "--epoch", "0"], "good", 2, r"--epoch 0: must be at least 1"),
    ("train-missing-input", ["train-quality", "--positive", "nopos.txt", "--negative", "neg.txt", "--output", "m.ftz"],
     "good", 3, r"nopos.txt: no such file"),
    ("train-output-bucket", ["train-quality", "--positive", "pos.txt", "--negative", "neg.txt",
                             "--output", "s3://nobucket/m.ftz"], "good", 3, r"bucket 'nobucket' does not exist"),
    ("train-bad-credentials", ["train-quality", "--positive", f"{S3}/pos.txt", "--negative", "neg.txt",
                               "--output", "m.ftz"], "badcreds", 3, r"access denied"),
    ("train-notes", ["train-quality", "--positive", "pos.txt", "--negative", "neg.txt", "--output", "m.ftz",
                     "--notes", "nonotes.md"], "good", 2, r"--notes nonotes.md: cannot read it"),
    # mdr submit
    ("submit-output-bucket", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", "s3://nobucket/r",
                              "--dry-run"], "good", 3, r"s3://nobucket/r: bucket 'nobucket' does not exist"),
    ("submit-input-bucket", ["submit", "--target", "k8s", "--input", "s3://nobucket/in/", "--output", f"{S3}/r",
                             "--dry-run"], "good", 3, r"bucket 'nobucket' does not exist .*fix --input"),
    ("submit-bad-credentials", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", f"{S3}/r",
                                "--dry-run"], "badcreds", 3, r"access denied"),
    ("submit-missing-model", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", f"{S3}/r", "--dry-run",
                              "--set", f"quality.model_uri={S3}/models/none.ftz"], "good", 3,
     r"s3://clidata/models/none.ftz: no such file or folder; fix quality.model_uri"),
    ("submit-corrupt-model", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", f"{S3}/r", "--dry-run",
                              "--set", f"quality.model_uri={S3}/models/bad.ftz"], "good", 3,
     r"quality.model_uri=s3://clidata/models/bad.ftz: not a fastText model"),
    ("submit-threshold", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", f"{S3}/r", "--dry-run",
                          "--set", "quality.threshold=7"], "good", 2, r"quality.threshold: 7.0 is out of range"),
    ("submit-local-output", ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", "out3", "--dry-run"],
     "good", 2, r"a cluster cannot read this machine's files"),
    ("submit-missing-input", ["submit", "--target", "spark-submit", "--master", "spark://127.0.0.1:9",
                              "--input", f"{S3}/nothing/", "--output", f"{S3}/r"], "good", 3,
     r"s3://clidata/nothing/: no WARC files found"),
    ("submit-bad-target", ["submit", "--target", "yarn", "--input", f"{S3}/in/", "--output", f"{S3}/r"], "good", 2,
     r"invalid choice: 'yarn'"),
    ("no-command", [], "good", 2, r""),
]


@pytest.mark.parametrize("argv, store, code, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fails_before_processing_saying_what_to_fix(world, argv, store, code, message):
    before_s3 = s3_keys(world, "")
    t0 = time.time()
    r = mdr(world, [*argv[:1], *(FAST if argv and argv[0] in ("run", "stage") else []), *argv[1:]], store)
    seconds = time.time() - t0
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    if argv:
        assert re.search(message, r.stderr), r.stderr[-3000:]
        assert re.search(r"^(mdr: |mdr( [-\w]+)?: error: )", r.stderr, re.M), r.stderr  # mdr's message, no trace
    # nothing was processed: no stage started, nothing written (the S3 write probe removes itself)
    assert not re.search(r"^\[(extract|filter|dedup_fuzzy|dedup_exact|quality)\] .* -> ", r.stderr, re.M), r.stderr
    assert not any((world["d"] / p).exists() for p in ("out1", "out2", "out3", "exp", "m.ftz")), r.stderr
    assert s3_keys(world, "") == before_s3
    assert seconds < 60, f"took {seconds:.0f}s: it must fail before starting Spark or Ray"


def test_good_commands_on_the_same_world_succeed(world):
    """The controls: with the same files and store, the right arguments work (so the failures above are the
    bad argument's, not the fixtures')."""
    r = mdr(world, ["status", RUN])
    assert r.returncode == 0 and "dedup_exact" in r.stdout, r.stderr
    r = mdr(world, ["explain", RUN, "d1", "--json"])
    assert r.returncode == 0 and '"outcome": "kept"' in r.stdout, r.stderr
    r = mdr(world, ["explain", RUN, "no-such-doc"])
    assert r.returncode == 1  # documented: no stage has it
    r = mdr(world, ["export", RUN, "--output", f"{S3}/exported"])
    assert r.returncode == 0, r.stderr
    assert f"exported/documents/00000.jsonl.gz" in " ".join(s3_keys(world, "exported/"))
    world["s3"].client().put_object(Bucket=BUCKET, Key="models/good.ftz", Body=GOOD_MODEL.read_bytes())
    r = mdr(world, ["submit", "--target", "k8s", "--input", f"{S3}/in/", "--output", f"{S3}/r", "--dry-run",
                    "--set", f"quality.model_uri={S3}/models/good.ftz"])
    assert r.returncode == 0 and "kind: RayJob" in r.stdout, r.stderr[-2000:]
    assert not s3_keys(world, "r/"), "a dry run writes nothing"
    r = mdr(world, ["sample", f"{S3}/samples/s.warc.gz"])
    assert r.returncode == 0 and "samples/s.warc.gz" in s3_keys(world, "samples/"), r.stderr


# --------------------------------------------------------------------------- HTTP only from allowed bases

class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict, bytes]] = {}
    seen: list[str] = []

    def _reply(self, body: bool) -> None:
        self.seen.append(f"{self.server.server_address[1]}{self.path}")
        code, headers, data = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._reply(True)

    def do_HEAD(self):  # noqa: N802
        self._reply(False)

    def log_message(self, *a):
        pass


@pytest.fixture()
def two_hosts():
    """Two HTTP servers on 127.0.0.1: the allowed one redirects to itself and to the other (not allowed)."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ok, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    _Handler.seen = []
    _Handler.routes = {
        "/crawl/a.warc.gz": (200, {}, b"WARC bytes"),
        "/crawl/inside": (302, {"Location": f"{ok}/crawl/a.warc.gz"}, b""),
        "/crawl/outside": (302, {"Location": f"{other}/secret.warc.gz"}, b""),
        "/secret.warc.gz": (200, {}, b"should never be read"),
    }
    yield ok, other
    for s in servers:
        s.shutdown()
        s.server_close()


def test_http_reads_only_under_allowed_bases_redirects_included(two_hosts):
    from pipeline.core.config import StorageConfig
    from pipeline.core.storage import Storage, StorageError
    ok, other = two_hosts
    store = Storage(StorageConfig(http_base_urls=[f"{ok}/crawl/"], retries=2))
    assert store.read_bytes(f"{ok}/crawl/a.warc.gz") == b"WARC bytes"
    assert store.read_bytes(f"{ok}/crawl/inside") == b"WARC bytes"  # a redirect inside the base is followed
    with pytest.raises(StorageError, match="redirect to .*secret.warc.gz refused: not under an allowed HTTP base"):
        store.read_bytes(f"{ok}/crawl/outside")
    assert store.exists(f"{ok}/crawl/outside") is False
    for uri in (f"{other}/secret.warc.gz", f"{ok}/elsewhere.warc.gz", f"{ok}/crawl-not/x",
                f"{ok.replace('http', 'https')}/crawl/a.warc.gz"):
        with pytest.raises(StorageError, match="not under an allowed HTTP base URL"):
            store.read_bytes(uri)
    assert not any(s.endswith("/secret.warc.gz") for s in _Handler.seen), _Handler.seen  # never fetched


def test_listing_entries_resolve_only_to_allowed_bases(two_hosts, tmp_path):
    """A paths listing's relative entries resolve against run.paths_base_url; an entry (or a base) outside
    storage.http_base_urls is refused while resolving the input, before any task."""
    from pipeline.core.config import load_config
    from pipeline.stages.extract import resolve_warcs
    from pipeline.core.storage import Storage, StorageError
    ok, other = two_hosts
    listing = tmp_path / "warc.paths"
    listing.write_text("crawl/a.warc.gz\n")
    cfg = load_config(None, [f"storage.http_base_urls=[{ok}/crawl/]", f"run.paths_base_url={ok}/"])
    assert resolve_warcs(Storage(cfg.storage), cfg, str(listing)).parts == [f"{ok}/crawl/a.warc.gz"]
    for entries, base in ((f"{other}/secret.warc.gz\n", f"{ok}/"), ("crawl/a.warc.gz\n", f"{other}/"),
                          ("../secret.warc.gz\n", f"{ok}/crawl/")):
        listing.write_text(entries)
        cfg = load_config(None, [f"storage.http_base_urls=[{ok}/crawl/]", f"run.paths_base_url={base}"])
        with pytest.raises(StorageError, match="not under an allowed HTTP base URL"):
            resolve_warcs(Storage(cfg.storage), cfg, str(listing))
    assert _Handler.seen == []


# --------------------------------------------------------------------------- names never come from the input

HOSTILE = ["../../etc/passwd", "/abs/path", "..", ".", "", ".hidden", "a/../../b", "C:\\Windows\\x", "x\x00y",
           "..%2f..%2fetc", "~root", "ﬁle\u202e", "a" * 500, "s3://bucket/key", "http://h/../../x?y=..&z=/"]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_key_is_one_harmless_path_component(name):
    import posixpath

    from pipeline.core.storage import join, safe_key
    k = safe_key(name)
    assert k and "/" not in k and "\\" not in k and "\x00" not in k and not k.startswith(".")
    assert k not in (".", "..") and len(k) <= 200
    root = "/data/out/stage"
    assert posixpath.normpath(join(root, k)).startswith(root + "/")


def test_output_names_never_come_from_urls_or_file_names(spark, tmp_path):
    """WARCs with hostile file names holding records with hostile URLs: everything the stage writes is inside
    its output root, under names made of task numbers and attempt tokens only."""
    from pipeline.core.config import load_config
    from pipeline.run.runner import run_stage
    from tests import warcgen
    inp = tmp_path / "in"
    inp.mkdir()
    urls = ["https://e.org/../../../../tmp/pwned", "https://e.org/%2e%2e/%2e%2e/x", "file:///etc/passwd",
            "https://e.org/a?f=../../b", "https://e.org/" + "x/" * 100, "javascript:alert(1)"]
    names = ["..evil.warc.gz", "a b;rm -rf ~.warc.gz", "__init__.warc.gz", "ñame-%2e%2e.warc.gz"]
    for i, n in enumerate(names):  # the same URLs in every file, as other records (relabel: their own record ids)
        warcgen.write_pages(str(inp / n), [(u, warcgen.page(i * 10 + j)) for j, u in enumerate(urls)])
        (inp / n).write_bytes(warcgen.relabel((inp / n).read_bytes(), i))
    out = tmp_path / "out" / "extract"
    cfg = load_config(None, ["extract.url_filter.enabled=false", "extract.langid.enabled=false"])
    man = run_stage(cfg, "extract", str(inp), str(out))
    assert man["counts"]["in"] == man["counts"]["kept"] + sum(man["counts"]["removed"].values()) > 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    pattern = re.compile(r"^(in/.*|out/extract/(_manifest\.json|_lease\.json|(_rejects/)?part-\d{5}-[a-z0-9-]+\.parquet))$")
    assert all(pattern.match(p) for p in written), [p for p in written if not pattern.match(p)]
    assert sorted(p.name for p in inp.iterdir()) == sorted(names)  # the input folder is untouched
    assert not Path("/tmp/pwned").exists()


def test_a_failed_spark_job_is_reported_as_one_line():
    """What a Spark job that failed after its retries raises (the JVM's message with the worker's traceback inside)
    becomes one line naming the worker's own error: a storage error exits 3, anything else 1."""
    from pipeline.core.stage import StageFailed
    from pipeline.run.runner import job_error
    from pipeline.core.storage import StorageError
    jvm = ("An error occurred while calling o412.collectAndServe.\n: org.apache.spark.SparkException: Job aborted due "
           "to stage failure: Task 0 in stage 3.0 failed 4 times, most recent failure: Lost task 0.3 in stage 3.0 "
           "(TID 9) (127.0.0.1 executor driver): org.apache.spark.api.python.PythonException: Traceback (most recent "
           "call last):\n  File \"/work/main/pipeline/core/stage.py\", line 95, in _flush\n    raise StorageError(msg) "
           "from e\n{error}\n\n\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException"
           "(PythonRunner.scala:641)\n\tat scala.collection.Iterator.foreach(Iterator.scala:943)\n")
    e = job_error("extract", RuntimeError(jvm.format(error="pipeline.core.storage.StorageError: s3://b/out/extract: cannot "
                                                          "write task 0's part: AWS Error NO_SUCH_BUCKET")))
    assert isinstance(e, StorageError) and "\n" not in str(e)
    assert str(e).startswith("stage extract: a task failed after its retries: StorageError: s3://b/out/extract: "
                             "cannot write task 0's part") and "re-run the same command" in str(e)
    e = job_error("filter", RuntimeError(jvm.format(error="ValueError: bad row")))
    assert isinstance(e, StageFailed) and "ValueError: bad row" in str(e) and "\n" not in str(e)
    e = job_error("dedup_fuzzy", RuntimeError("org.apache.spark.SparkException: Job aborted: Task 2 failed 4 times: "
                                              "org.apache.spark.SparkException: Python worker exited unexpectedly "
                                              "(crashed)\n\tat org.apache.spark.api.python.BasePythonRunner"))
    assert isinstance(e, StageFailed) and "a Python worker kept crashing" in str(e)
