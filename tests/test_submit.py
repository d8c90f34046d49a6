"""`mdr submit`: --dry-run output field by field for both targets, no credential in anything rendered, and the
k8s orchestration (apply, wait on status and manifest, stop on failure, resume) against a stand-in operator."""
import copy
import shlex
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.cluster.plan import RunPlan, StagePlan
from pipeline.cluster.submit import plan_run, submit_run
from pipeline.cluster.submit_k8s import K8S_MASTER, K8sTarget, stage_state
from pipeline.core.config import load_config
from pipeline.core.dataset import read_manifest
from pipeline.core.stage import StageFailed
from pipeline.core.storage import Storage
from pipeline.run.runner import registry, run_stage, stage_hash

ACCESS_KEY = "AKIAMDRSUBMITTEST001"
SECRET_KEY = "mdr/submit+test/Secret0123456789abcdefXYZ"


@pytest.fixture()
def bucket(s3_server):
    name = f"submit-{len(s3_server.client().list_buckets()['Buckets'])}"
    return s3_server.make_bucket(name)


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _opts(cmd: list[str]) -> dict[str, list[str]]:
    """spark-submit options before the application file: --flag -> values (repeatable flags keep all)."""
    opts: dict[str, list[str]] = {}
    i = 1
    while i < len(cmd) and cmd[i].startswith("--"):
        opts.setdefault(cmd[i], []).append(cmd[i + 1])
        i += 2
    opts["_app"] = cmd[i:]
    return opts


def test_spark_submit_dry_run_fields(capsys, s3_server, bucket, tmp_path):
    endpoint = f"storage.s3_endpoint={s3_server.endpoint}"
    rc, out, _ = _run(capsys, "submit", "--target", "spark-submit", "--master", "spark://10.1.2.3:7077",
                      "--input", f"{bucket}/crawl/warc.paths.gz", "--output", f"{bucket}/runs/r1/",
                      "--stages", "extract,filter", "--python", "/opt/env/bin/python",
                      "--archives", "s3://deps/env.tar.gz#env", "--conf", "spark.task.maxFailures=8",
                      "--staging-dir", str(tmp_path / "staging"), "--set", endpoint,
                      "--set", "cluster.executor_memory=6g", "--set", "cluster.executor_cores=3",
                      "--set", "cluster.executor_instances=5", "--set", "cluster.driver_memory=3g", "--dry-run")
    assert rc == 0
    assert not (tmp_path / "staging").exists(), "a dry run writes nothing"
    doc = yaml.safe_load(out)
    cfg = load_config(None, [endpoint])
    assert doc["target"] == "spark-submit" and doc["root"] == f"{bucket}/runs/r1" and doc["master"] == "spark://10.1.2.3:7077"
    assert doc["config_file"] == str(tmp_path / "staging" / "mdr-config.yaml")
    assert [s["stage"] for s in doc["stages"]] == ["extract", "filter"]
    assert all(s["state"] == "submit" for s in doc["stages"])
    for st, name in zip(doc["stages"], ["extract", "filter"]):
        assert st["config_hash"] == stage_hash(cfg, registry()[name])
        assert st["output"] == f"{bucket}/runs/r1/{name}"
        cmd = st["command"]
        assert shlex.split(st["shell"]) == cmd and Path(cmd[0]).name == "spark-submit"
        o = _opts(cmd)
        assert o["--master"] == ["spark://10.1.2.3:7077"] and o["--deploy-mode"] == ["client"]
        assert o["--name"] == [f"{doc['run']}-{name}"]
        assert o["--archives"] == [f"{doc['source_archive']}#mdr-src,s3://deps/env.tar.gz#env"]
        assert o["--files"] == [doc["config_file"]]
        assert o["--executor-memory"] == ["6g"] and o["--executor-cores"] == ["3"]
        assert o["--num-executors"] == ["5"] and o["--total-executor-cores"] == ["15"]
        assert o["--driver-memory"] == ["3g"]
        assert {"spark.executorEnv.PYTHONPATH=mdr-src", "spark.pyspark.python=/opt/env/bin/python",
                "spark.task.maxFailures=8"} <= set(o["--conf"])
        app = o["_app"]
        assert app[0].endswith(f"jobs/{name}.py")
        assert app[1:] == ["--config", doc["config_file"], "--input", st["input"], "--output", st["output"]]
    assert doc["stages"][1]["input"] == doc["stages"][0]["output"]
    assert doc["stages"][0]["input"] == f"{bucket}/crawl/warc.paths.gz"


def test_spark_submit_dry_run_with_image_on_kubernetes(capsys, s3_server, bucket):
    rc, out, _ = _run(capsys, "submit", "--target", "spark-submit", "--master", "k8s://https://10.0.0.1:443",
                      "--deploy-mode", "cluster", "--package", "image", "--spark-image", "reg.example/mdr-spark:9",
                      "--input", f"{bucket}/crawl/", "--output", f"{bucket}/runs/r2", "--stages", "extract",
                      "--set", f"storage.s3_endpoint={s3_server.endpoint}", "--set", "cluster.driver_cores=2",
                      "--conf", "spark.kubernetes.file.upload.path=s3a://deps/uploads", "--dry-run")
    assert rc == 0
    st = yaml.safe_load(out)["stages"][0]
    o = _opts(st["command"])
    assert "--archives" not in o and o["--deploy-mode"] == ["cluster"] and o["--driver-cores"] == ["2"]
    assert {"spark.kubernetes.container.image=reg.example/mdr-spark:9", "spark.kubernetes.namespace=mdr",
            "spark.kubernetes.authenticate.driver.serviceAccountName=mdr-spark",
            "spark.kubernetes.file.upload.path=s3a://deps/uploads"} <= set(o["--conf"])
    # without an upload location, Spark on Kubernetes cannot ship the local config file to the driver pod
    rc, _, err = _run(capsys, "submit", "--target", "spark-submit", "--master", "k8s://https://10.0.0.1:443",
                      "--deploy-mode", "cluster", "--package", "image", "--input", f"{bucket}/crawl/",
                      "--output", f"{bucket}/runs/r2", "--stages", "extract", "--dry-run",
                      "--set", f"storage.s3_endpoint={s3_server.endpoint}")
    assert rc == 2 and "spark.kubernetes.file.upload.path" in err
    assert o["_app"][:3] == ["local:///opt/mdr/jobs/extract.py", "--config", "mdr-config.yaml"]


def test_spark_submit_refuses_cluster_mode_on_standalone(capsys, s3_server, bucket):
    rc, _, err = _run(capsys, "submit", "--target", "spark-submit", "--master", "spark://h:7077", "--deploy-mode",
                      "cluster", "--input", f"{bucket}/x.warc.gz", "--output", f"{bucket}/r", "--dry-run",
                      "--set", f"storage.s3_endpoint={s3_server.endpoint}")
    assert rc == 2 and "client mode only" in err


def _k8s_dry_run(capsys, s3_server, bucket, *extra) -> tuple[str, list[dict]]:
    rc, out, err = _run(capsys, "submit", "--target", "k8s", "--input", f"{bucket}/crawl/warc.paths.gz",
                        "--output", f"{bucket}/runs/k1", "--spark-image", "reg.example/mdr-spark:1.2",
                        "--ray-image", "reg.example/mdr-ray:1.2", "--namespace", "pipelines",
                        "--set", f"storage.s3_endpoint={s3_server.endpoint}", "--dry-run", *extra)
    assert rc == 0, err
    return out, [d for d in yaml.safe_load_all(out) if d]


def test_k8s_dry_run_fields(capsys, s3_server, bucket):
    stages = ["extract", "dedup_fuzzy"] + (["quality"] if "quality" in registry() else [])
    out, docs = _k8s_dry_run(capsys, s3_server, bucket, "--stages", ",".join(stages),
                             "--set", "cluster.executor_instances=7", "--set", "cluster.executor_memory=12g",
                             "--set", "cluster.ray_workers=3", "--set", "cluster.ray_worker_memory=20Gi",
                             "--set", "cluster.credentials_secret=mdr-s3")
    cfg = load_config(None, [f"storage.s3_endpoint={s3_server.endpoint}"])
    root = f"{bucket}/runs/k1"
    cm, *objs = docs
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "pipelines"
    shipped = yaml.safe_load(cm["data"]["config.yaml"])
    assert shipped["spark"]["master"] == K8S_MASTER and shipped["ray"]["address"] == "auto"
    assert shipped["run"]["output"] == root and shipped["storage"]["s3_endpoint"] == s3_server.endpoint
    assert [o["metadata"]["annotations"]["mdr.dev/output"] for o in objs] == [f"{root}/{s}" for s in stages]
    run = cm["metadata"]["labels"]["mdr.dev/run"]
    for obj, name in zip(objs, stages):
        meta = obj["metadata"]
        assert meta["name"] == f"{run}-{name.replace('_', '-')}" and meta["namespace"] == "pipelines"
        assert meta["annotations"]["mdr.dev/config-hash"] == stage_hash(cfg, registry()[name])
        assert meta["annotations"]["mdr.dev/root"] == root
        assert f"# stage {name} " in out
    spark_objs = [o for o in objs if o["kind"] == "SparkApplication"]
    assert len(spark_objs) == 2
    for obj, name, inp in zip(spark_objs, ["extract", "dedup_fuzzy"], [f"{bucket}/crawl/warc.paths.gz", None]):
        spec = obj["spec"]
        assert spec["image"] == "reg.example/mdr-spark:1.2" and spec["sparkVersion"] == "4.3.0"
        assert spec["mainApplicationFile"] == f"local:///opt/mdr/jobs/{name}.py"
        args = spec["arguments"]
        assert args[:2] == ["--config", "/etc/mdr/config.yaml"] and args[-2:] == ["--output", f"{root}/{name}"]
        if inp:
            assert args[2:4] == ["--input", inp]
        assert spec["executor"]["instances"] == 7 and spec["executor"]["memory"] == "12g"
        assert spec["driver"]["serviceAccount"] == spec["executor"]["serviceAccount"] == "mdr-spark"
        assert spec["volumes"] == [{"name": "mdr-config", "configMap": {"name": cm["metadata"]["name"]}}]
        assert spec["driver"]["envFrom"] == spec["executor"]["envFrom"] == [{"secretRef": {"name": "mdr-s3"}}]
    # dedup_fuzzy reads what filter... here what extract wrote, since filter is not in the run
    assert spark_objs[1]["spec"]["arguments"][2:4] == ["--input", f"{root}/extract"]
    assert spark_objs[0]["spec"]["driver"]["memory"] == "4g" and spark_objs[1]["spec"]["driver"]["memory"] == "8g"
    if "quality" in stages:
        rj = objs[-1]
        assert rj["kind"] == "RayJob" and rj["spec"]["shutdownAfterJobFinishes"] is True
        entry = shlex.split(rj["spec"]["entrypoint"])
        assert entry[:2] == ["python", "/opt/mdr/jobs/quality.py"]
        assert entry[entry.index("--input") + 1] == f"{root}/dedup_fuzzy"
        assert entry[entry.index("--output") + 1] == f"{root}/quality"
        assert entry[entry.index("--config") + 1] == "/etc/mdr/config.yaml"
        rc_spec = rj["spec"]["rayClusterSpec"]
        assert rc_spec["rayVersion"] == "2.60.0"
        worker = rc_spec["workerGroupSpecs"][0]
        assert worker["replicas"] == worker["minReplicas"] == worker["maxReplicas"] == 3
        ctr = worker["template"]["spec"]["containers"][0]
        assert ctr["image"] == "reg.example/mdr-ray:1.2" and ctr["resources"]["limits"]["memory"] == "20Gi"
        head = rc_spec["headGroupSpec"]["template"]["spec"]
        assert head["containers"][0]["image"] == "reg.example/mdr-ray:1.2"
        assert head["volumes"][0]["configMap"]["name"] == cm["metadata"]["name"]


def test_no_access_key_in_rendered_output(capsys, monkeypatch, s3_server, bucket, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    texts = []
    out, _ = _k8s_dry_run(capsys, s3_server, bucket, "--stages", "extract,filter",
                          "--set", "cluster.credentials_secret=mdr-s3")
    texts.append(out)
    rc, out, err = _run(capsys, "submit", "--target", "spark-submit", "--master", "yarn", "--input",
                        f"{bucket}/crawl/", "--output", f"{bucket}/runs/s1", "--dry-run",
                        "--set", f"storage.s3_endpoint={s3_server.endpoint}")
    assert rc == 0
    texts += [out, err]
    for text in texts:
        assert ACCESS_KEY not in text and SECRET_KEY not in text
        assert "AWS_SECRET_ACCESS_KEY" not in text or "secretRef" in text
    # a credential given as a Spark setting is refused before anything is rendered
    rc, out, err = _run(capsys, "submit", "--target", "spark-submit", "--master", "yarn", "--input",
                        f"{bucket}/crawl/", "--output", f"{bucket}/runs/s1", "--dry-run",
                        "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRET_KEY}")
    assert rc == 2 and SECRET_KEY not in out + err and "credential" in err
    # ... and so is a config that would carry the key's value anywhere
    rc, out, err = _run(capsys, "submit", "--target", "k8s", "--input", f"{bucket}/crawl/", "--output",
                        f"{bucket}/runs/s1", "--dry-run", "--set", f"spark.conf={{spark.hadoop.x: {ACCESS_KEY}}}")
    assert rc == 2 and ACCESS_KEY not in out + err


def test_k8s_refuses_local_paths(capsys, tmp_path):
    rc, _, err = _run(capsys, "submit", "--target", "k8s", "--input", "s3://b/x.warc.gz", "--output",
                      str(tmp_path / "out"), "--dry-run")
    assert rc == 2 and "cannot read this machine's files" in err


# --------------------------------------------------------------------------- orchestration

class FakeOperator:
    """Stands in for the API server and the spark-operator: a created SparkApplication runs its stage here,
    from the arguments and the ConfigMap it references, exactly as a driver pod would."""

    def __init__(self, spark, tmp: Path, fail: dict | None = None, polls: int = 2) -> None:
        self.spark, self.tmp, self.fail, self.polls = spark, tmp, fail or {}, polls
        self.objs: dict[tuple, dict] = {}
        self.created: list[dict] = []
        self.logs: dict[str, str] = {}
        self._pending: dict[tuple, int] = {}

    @staticmethod
    def _key(obj: dict) -> tuple:
        return obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]

    def get(self, obj):
        key = self._key(obj)
        if key not in self.objs:
            return None
        if self._pending.get(key, 0) > 0:  # still running for a few polls
            self._pending[key] -= 1
            if self._pending[key] == 0:
                self._finish(self.objs[key])
            return {**copy.deepcopy(self.objs[key]), "status": {"applicationState": {"state": "RUNNING"}}}
        return copy.deepcopy(self.objs[key])

    def create(self, obj):
        key = self._key(obj)
        assert key not in self.objs, f"{key} exists"
        obj = copy.deepcopy(obj)
        self.objs[key] = obj
        self.created.append(obj)
        if obj["kind"] != "ConfigMap":
            self._pending[key] = self.polls

    def replace(self, obj):
        self.objs[self._key(obj)] = copy.deepcopy(obj)

    def delete(self, obj):
        self.objs.pop(self._key(obj), None)

    def pod_log(self, namespace, pod, tail):
        return self.logs.get(pod, "")

    def _finish(self, obj):
        spec, ns = obj["spec"], obj["metadata"]["namespace"]
        stage = spec["mainApplicationFile"].rsplit("/", 1)[-1][:-len(".py")]
        if stage in self.fail:
            pod = f"{obj['metadata']['name']}-driver"
            obj["status"] = {"applicationState": {"state": "FAILED", "errorMessage":
                                                  "driver container failed with ExitCode: 1, Reason: Error"},
                             "driverInfo": {"podName": pod}}
            self.logs[pod] = f"INFO starting\nmdr: {self.fail[stage]}\nINFO exiting\n"
            return
        cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "mdr-config")
        cm = self.objs[("ConfigMap", ns, cm_name)]
        args = spec["arguments"]
        assert args[:2] == ["--config", "/etc/mdr/config.yaml"]
        path = self.tmp / f"{obj['metadata']['name']}.yaml"
        path.write_text(cm["data"]["config.yaml"])
        cfg = load_config(str(path))
        run_stage(cfg, stage, args[args.index("--input") + 1], args[args.index("--output") + 1],
                  force="--force" in args, spark=self.spark)
        obj["status"] = {"applicationState": {"state": "COMPLETED"}, "driverInfo": {"podName": "x"}}


def _cfg(s3_server, *extra):
    return load_config(None, [f"storage.s3_endpoint={s3_server.endpoint}", "cluster.poll_s=0.05",
                              "run.audit=none", *extra])


def _plan(cfg, store, inp, root, stages, force=False):
    return plan_run(cfg, store, input_uri=inp, root=root, stages=stages, run_name=None, force=force,
                    spark_master=K8S_MASTER, ray_address="auto", needs_remote=True)


def test_k8s_failed_stage_stops_the_run_and_resubmit_resumes(spark, s3_server, bucket, tmp_path):
    from pipeline.sample.generate import write_sample_warc
    cfg = _cfg(s3_server, "dedup_exact.substring_dedup=false")  # the quick part of the stage is enough here
    store = Storage(cfg.storage)
    warc = f"{bucket}/crawl/sample.warc.gz"
    write_sample_warc(warc)
    root = f"{bucket}/runs/k8s"
    run_stage(cfg, "extract", warc, f"{root}/extract", spark=spark)  # an earlier attempt committed extract
    stages = ["extract", "filter", "dedup_exact"]

    plan = _plan(cfg, store, warc, root, stages)
    assert [s.committed for s in plan.stages] == [True, False, False]
    op = FakeOperator(spark, tmp_path, fail={"filter": "stage filter: something broke in the filters"})
    target = K8sTarget(cfg, api=op, sleep=lambda s: None)
    with pytest.raises(StageFailed) as e:
        submit_run(cfg, store, plan, target)
    msg = str(e.value)
    assert "stage filter failed" in msg and "ExitCode: 1" in msg and "something broke in the filters" in msg
    assert [o["kind"] for o in op.created] == ["ConfigMap", "SparkApplication"]  # dedup_exact never started
    assert op.created[1]["metadata"]["name"].endswith("-filter")
    assert read_manifest(store, f"{root}/filter") is None

    # re-submitting resumes after the last committed stage: extract is not submitted again
    plan = _plan(cfg, store, warc, root, stages)
    op2 = FakeOperator(spark, tmp_path)
    op2.objs = {k: v for k, v in op.objs.items()}  # the failed application is still there
    manifests = submit_run(cfg, store, plan, K8sTarget(cfg, api=op2, sleep=lambda s: None))
    assert [m["stage"] for m in manifests] == stages
    assert [o["metadata"]["name"].rsplit("-", 1)[-1] for o in op2.created] == ["filter", "exact"]
    for m, name in zip(manifests, stages):
        assert m["config_hash"] == stage_hash(cfg, registry()[name])
    assert manifests[1]["input"]["uri"] == f"{root}/extract" and manifests[2]["input"]["uri"] == f"{root}/filter"
    # everything committed: a third submission submits nothing
    plan = _plan(cfg, store, warc, root, stages)
    assert all(s.committed for s in plan.stages)
    op3 = FakeOperator(spark, tmp_path)
    assert [m["stage"] for m in submit_run(cfg, store, plan, K8sTarget(cfg, api=op3))] == stages
    assert [o["kind"] for o in op3.created] == ["ConfigMap"]


def test_k8s_run_with_an_s3a_root_commits_and_resumes(spark, s3_server, bucket, tmp_path):
    """A Hadoop-style s3a:// storage root (as Spark clusters name S3): the stages read and write it, the manifests
    list exactly the committed parts under it, and a re-submission finds every stage committed."""
    from pipeline.core.dataset import read_dataset
    from pipeline.sample.generate import write_sample_warc
    cfg = _cfg(s3_server)
    store = Storage(cfg.storage)
    s3a = bucket.replace("s3://", "s3a://", 1)
    warc = f"{s3a}/crawl/sample.warc.gz"
    summary = write_sample_warc(warc)
    root = f"{s3a}/runs/native"
    stages = ["extract", "filter"]
    plan = _plan(cfg, store, warc, root, stages)
    manifests = submit_run(cfg, store, plan, K8sTarget(cfg, api=FakeOperator(spark, tmp_path), sleep=lambda s: None))
    assert [m["stage"] for m in manifests] == stages and summary["captures"] > 0
    for m, name in zip(manifests, stages):
        assert m["parts"] and all(store.exists(f"{root}/{name}/{p['path']}") for p in m["parts"])
        assert sum(p["rows"] for p in m["parts"]) == m["rows"]
        assert m["counts"]["in"] == m["counts"]["kept"] + sum(m["counts"]["removed"].values())
        # the same objects, read back through the s3a:// root and through s3://
        assert read_dataset(store, f"{root}/{name}").num_rows == m["rows"] > 0
        assert read_dataset(store, f"{bucket}/runs/native/{name}").num_rows == m["rows"]
    assert manifests[1]["input"]["uri"] == f"{root}/extract"
    again = _plan(cfg, store, warc, root, stages)
    assert all(s.committed for s in again.stages)


def _ray_plan(root: str) -> tuple[RunPlan, StagePlan]:
    st = StagePlan("quality", "ray", f"{root}/dedup_exact", f"{root}/quality", "0123456789ab", False)
    return RunPlan("mdr-raytest1", root, st.input, [st], "run: {}\n"), st


@pytest.mark.parametrize("status, phase", [
    ({"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}, "running"),
    ({"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}, "succeeded"),
    ({"jobStatus": "FAILED", "jobDeploymentStatus": "Complete", "message": "boom"}, "failed"),
    ({"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"}, "failed"),
    ({}, "running"),
])
def test_rayjob_states(status, phase):
    assert stage_state({"kind": "RayJob", "status": status})[0] == phase


def test_k8s_failed_rayjob_raises_its_message(cfg_factory):
    cfg = cfg_factory("cluster.poll_s=0.05")
    plan, st = _ray_plan("s3://b/runs/r")

    class Api(FakeOperator):
        def get(self, obj):
            cur = copy.deepcopy(self.objs.get(self._key(obj)))
            if cur and cur["kind"] == "RayJob":
                cur["status"] = {"jobStatus": "FAILED", "jobDeploymentStatus": "Complete",
                                 "message": "Job failed due to an application error: mdr: stage quality: no model"}
            return cur

    api = Api(None, Path("."))
    with pytest.raises(StageFailed, match="no model"):
        K8sTarget(cfg, api=api, sleep=lambda s: None).run_stage(plan, st, lambda: False)
    assert api.created[0]["kind"] == "RayJob" and api.created[0]["spec"]["shutdownAfterJobFinishes"] is True


@pytest.mark.parametrize("gone", [False, True])
def test_k8s_stage_without_a_committed_manifest_stops_the_run(cfg_factory, tmp_path, gone):
    """The operator reports success (or the resource vanishes) but no manifest is committed: the run stops there,
    naming the stage and its output, and the next stage is never created."""
    cfg = cfg_factory("cluster.poll_s=0.05")
    store = Storage(cfg.storage)
    root = str(tmp_path / "runs" / "r")
    names = ["filter", "dedup_exact"]
    stages = [StagePlan(n, "spark", f"{root}/{a}", f"{root}/{n}", stage_hash(cfg, registry()[n]), False)
              for a, n in zip(["extract", *names], names)]
    plan = RunPlan("mdr-nocommit1", root, stages[0].input, stages, "run: {}\n")

    class Api(FakeOperator):
        def _finish(self, obj):  # the driver "succeeds" without committing anything
            obj["status"] = {"applicationState": {"state": "COMPLETED"}}
            obj["gone"] = gone   # removed by its TTL or by hand right after

        def get(self, obj):
            cur = super().get(obj)
            return None if cur and cur.get("gone") else cur

    api = Api(None, tmp_path, polls=1)
    with pytest.raises(StageFailed) as e:
        submit_run(cfg, store, plan, K8sTarget(cfg, api=api, sleep=lambda s: None))
    assert "stage filter" in str(e.value) and f"{root}/filter" in str(e.value)
    assert ("disappeared" in str(e.value)) == gone
    assert [o["kind"] for o in api.created] == ["ConfigMap", "SparkApplication"]
    assert api.created[1]["metadata"]["name"] == "mdr-nocommit1-filter"


def test_k8s_stage_timeout(cfg_factory):
    cfg = cfg_factory("cluster.poll_s=1", "cluster.stage_timeout_s=5")
    plan, st = _ray_plan("s3://b/runs/r")
    now = [0.0]

    class Api(FakeOperator):
        def get(self, obj):
            cur = copy.deepcopy(self.objs.get(self._key(obj)))
            if cur:
                cur["status"] = {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}
            return cur

    target = K8sTarget(cfg, api=Api(None, Path(".")), sleep=lambda s: now.__setitem__(0, now[0] + s),
                       clock=lambda: now[0])
    with pytest.raises(StageFailed, match="stage_timeout_s"):
        target.run_stage(plan, st, lambda: False)


def test_k8s_resubmit_waits_for_a_stage_still_running(cfg_factory):
    """The orchestrator died while a stage ran: the same submission waits for that job instead of restarting it."""
    cfg = cfg_factory("cluster.poll_s=0.05")
    plan, st = _ray_plan("s3://b/runs/r")
    from pipeline.cluster.submit_k8s import render_stage

    class Api(FakeOperator):
        polls = 0

        def get(self, obj):
            cur = copy.deepcopy(self.objs.get(self._key(obj)))
            if cur:
                Api.polls += 1
                done = Api.polls > 3
                cur["status"] = {"jobStatus": "SUCCEEDED" if done else "RUNNING",
                                 "jobDeploymentStatus": "Complete" if done else "Running"}
            return cur

    api = Api(None, Path("."))
    running = render_stage(plan, st, cfg)
    api.objs[api._key(running)] = running
    K8sTarget(cfg, api=api, sleep=lambda s: None).run_stage(plan, st, lambda: True)
    assert api.created == []  # attached, not deleted and re-created
    # a different config: the old job is replaced
    api2 = Api(None, Path("."))
    Api.polls = 0
    stale = copy.deepcopy(running)
    stale["metadata"]["annotations"]["mdr.dev/config-hash"] = "ffffffffffff"
    api2.objs[api2._key(stale)] = stale
    K8sTarget(cfg, api=api2, sleep=lambda s: None).run_stage(plan, st, lambda: True)
    assert [o["metadata"]["annotations"]["mdr.dev/config-hash"] for o in api2.created] == [st.config_hash]


def test_spark_submit_dry_run_quality_runs_its_driver_here(capsys, s3_server, bucket, tmp_path):
    if "quality" not in registry():
        pytest.skip("the quality stage is not in this build")
    rc, out, _ = _run(capsys, "submit", "--target", "spark-submit", "--master", "yarn", "--ray-address",
                      "ray://head:10001", "--input", f"{bucket}/runs/q/dedup_exact", "--output", f"{bucket}/runs/q",
                      "--stages", "quality", "--staging-dir", str(tmp_path), "--dry-run",
                      "--set", f"storage.s3_endpoint={s3_server.endpoint}")
    assert rc == 0
    st = yaml.safe_load(out)["stages"][0]
    cmd = st["command"]
    assert st["engine"] == "ray" and cmd[1].endswith("jobs/quality.py")
    assert cmd[2:] == ["--config", str(tmp_path / "mdr-config.yaml"), "--input", f"{bucket}/runs/q/dedup_exact",
                       "--output", f"{bucket}/runs/q/quality", "--ray-address", "ray://head:10001"]
