"""dedup_fuzzy on a real Spark standalone cluster (2 workers x 1 core) loses an executor JVM in the middle of
connected components, after round 1 (both executor JVMs are SIGKILLed; their workers start new ones): the stage
must still commit, with exactly the verdicts of a clean run.

The input: families of near-duplicate chains (each document a window of its family's text shifted by 5%), so
components need several rounds. Input and output live on the moto S3 server, so the round checkpoints go through
the storage layer (``<output>/_checkpoints/<run id>/cc-round-<k>/``).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading

import pytest

from pipeline.core.config import load_config
from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage, join
from tests.clusters import running_standalone
from tests.conftest import ROOT

FAMILIES, CHAIN, WORDS, SHIFT, FILES = 24, 12, 300, 15, 4


def chain_docs() -> list[dict]:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(20000)]
    docs = []
    for f in range(FAMILIES):
        base = rng.choices(vocab, k=WORDS + SHIFT * CHAIN)
        for j in range(CHAIN):
            docs.append({"id": f"f{f:02d}-{j:02d}", "text": " ".join(base[j * SHIFT:j * SHIFT + WORDS])})
    docs += [{"id": f"u{i:03d}", "text": " ".join(rng.choices(vocab, k=WORDS))} for i in range(24)]
    rng.shuffle(docs)
    return docs


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    with running_standalone(tmp_path_factory.mktemp("cc_cluster"), workers=2, cores=1, memory="2g") as c:
        yield c


def sets(s3_server) -> list[str]:
    return [f"storage.s3_endpoint={s3_server.endpoint}", "dedup_fuzzy.preset=fineweb", "run.audit=none",
            "spark.shuffle_partitions=4", "spark.conf={spark.executor.memory: 1g, spark.ui.enabled: 'false'}"]


def stage_cmd(inp: str, out: str, master: str, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "stage", "dedup_fuzzy", "--input", inp, "--output", out,
            "--master", master, *[a for s in overrides for a in ("--set", s)]]


def verdicts(store: Storage, out: str) -> tuple[list[str], dict]:
    kept = sorted(read_dataset(store, out, ["id"]).column("id").to_pylist())
    rej = {r["id"]: (r["reason"], json.loads(r["details"])["duplicate_of"]) for r in read_rejects(store, out).to_pylist()}
    return kept, rej


def test_stage_survives_an_executor_lost_mid_components(cluster, s3_server, tmp_path):
    bucket = s3_server.make_bucket("cc-loss")
    overrides = sets(s3_server)
    store = Storage(load_config(None, overrides).storage)
    docs = chain_docs()
    for p in range(FILES):
        store.write_text(f"{bucket}/in/docs-{p}.jsonl", "".join(json.dumps(d) + "\n" for d in docs[p::FILES]))
    inp = f"{bucket}/in"

    clean = f"{bucket}/clean"
    proc = subprocess.run(stage_cmd(inp, clean, "local[2]", overrides), cwd=ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    want = verdicts(store, clean)
    assert len(want[1]) == FAMILIES * (CHAIN - 1)   # each chain is one component

    out = f"{bucket}/killed"
    driver = subprocess.Popen(stage_cmd(inp, out, cluster.master, overrides), cwd=ROOT, env=cluster.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    killed: list[int] = []

    def watch():
        for line in driver.stderr:
            lines.append(line)
            if not killed and "connected components: round 1 done" in line:
                killed.extend(cluster.kill_executor(0) + cluster.kill_executor(1))
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        rc = driver.wait(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
    t.join(timeout=10)
    log = "".join(lines)
    assert killed, "the executor was not killed after round 1:\n" + log[-4000:]
    assert rc == 0, f"the stage failed after executor {killed} was killed:\n" + log[-6000:]
    man = read_manifest(store, out)
    assert man["stats"]["cc_rounds"] >= 2 and "round 2 done" in log
    assert verdicts(store, out) == want
    assert man["counts"] == read_manifest(store, clean)["counts"]
    # the round checkpoints are gone once the stage committed
    assert not store.list_files(join(out, "_checkpoints"), hidden=True)
