"""`mdr submit --target k8s`: render the stage templates in k8s/stages/ for a run and run them one by one.

Each Spark stage becomes a SparkApplication (Kubeflow spark-operator), the quality stage a RayJob
(KubeRay, cluster deleted when the job ends); the run's effective config is a ConfigMap mounted at
/etc/mdr in the drivers. Templates are loaded with ``yaml.safe_load`` and filled in as data (no text
templating); the Ray entrypoint, the one shell string, is built with ``shlex.join``. Credentials are
never rendered: pods get them from ``cluster.credentials_secret`` (envFrom) or IRSA/workload identity.
``KubeApi`` is the only code that talks to the API server (the ``kubernetes`` client, extra ``k8s``).
"""
from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import yaml

from pipeline.cluster.plan import RunPlan, StagePlan, check_no_secrets, dump_yaml, log, redact
from pipeline.core.config import Config, ConfigError
from pipeline.core.stage import StageFailed

TEMPLATES = Path(__file__).resolve().parents[2] / "k8s" / "stages"
TEMPLATE_FILES = {"extract": "spark-extract.yaml", "filter": "spark-filter.yaml",
                  "dedup_fuzzy": "spark-dedup-fuzzy.yaml", "dedup_exact": "spark-dedup-exact.yaml",
                  "quality": "ray-quality.yaml"}
K8S_MASTER = "k8s://https://kubernetes.default.svc:443"   # the API server as seen from a driver pod
CONFIG_DIR, CONFIG_KEY, CONFIG_VOLUME = "/etc/mdr", "config.yaml", "mdr-config"
IMAGE_ROOT = "/opt/mdr"
LABEL_RUN, LABEL_STAGE = "mdr.dev/run", "mdr.dev/stage"
API = {"SparkApplication": ("sparkoperator.k8s.io", "v1beta2", "sparkapplications"),
       "RayJob": ("ray.io", "v1", "rayjobs")}


# --------------------------------------------------------------------------- rendering

def resource_name(plan: RunPlan, stage: StagePlan) -> str:
    return f"{plan.run_name}-{stage.name.replace('_', '-')}"


def configmap_name(plan: RunPlan) -> str:
    return f"{plan.run_name}-config"


def load_template(stage: str, templates: Path | None = None) -> dict:
    path = (templates or TEMPLATES) / TEMPLATE_FILES[stage]
    if not path.exists():
        raise ConfigError(f"{path}: stage template missing; pass --templates DIR (the k8s/stages/ folder of mdr)")
    return yaml.safe_load(path.read_text())


def job_args(plan: RunPlan, stage: StagePlan) -> list[str]:
    args = ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--input", stage.input, "--output", stage.output]
    return args + (["--force"] if plan.force else [])


def _metadata(obj: dict, plan: RunPlan, stage: StagePlan, cfg: Config) -> None:
    meta = obj.setdefault("metadata", {})
    meta["name"] = resource_name(plan, stage)
    meta["namespace"] = cfg.cluster.namespace
    meta.setdefault("labels", {}).update({LABEL_RUN: plan.run_name, LABEL_STAGE: stage.name.replace("_", "-")})
    meta.setdefault("annotations", {}).update({
        "mdr.dev/config-hash": stage.config_hash, "mdr.dev/config-sha": plan.config_sha,
        "mdr.dev/root": plan.root, "mdr.dev/input": stage.input, "mdr.dev/output": stage.output})


def _env_from(cfg: Config) -> list[dict]:
    secret = cfg.cluster.credentials_secret
    return [{"secretRef": {"name": secret}}] if secret else []


def render_configmap(plan: RunPlan, cfg: Config) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": configmap_name(plan), "namespace": cfg.cluster.namespace,
                         "labels": {"app.kubernetes.io/name": "mdr", LABEL_RUN: plan.run_name},
                         "annotations": {"mdr.dev/config-sha": plan.config_sha, "mdr.dev/root": plan.root}},
            "data": {CONFIG_KEY: plan.config_yaml}}


def _config_volumes(volumes: list[dict], plan: RunPlan) -> None:
    for v in volumes:
        if v.get("name") == CONFIG_VOLUME:
            v["configMap"] = {"name": configmap_name(plan)}


def render_spark(plan: RunPlan, stage: StagePlan, cfg: Config, templates: Path | None = None) -> dict:
    obj = load_template(stage.name, templates)
    c, spec = cfg.cluster, obj["spec"]
    _metadata(obj, plan, stage, cfg)
    name = obj["metadata"]["name"]
    spec["image"] = c.spark_image
    spec["imagePullPolicy"] = c.image_pull_policy
    spec["mainApplicationFile"] = f"local://{IMAGE_ROOT}/jobs/{stage.name}.py"
    spec["arguments"] = job_args(plan, stage)
    conf = spec.setdefault("sparkConf", {})
    conf["spark.kubernetes.executor.podNamePrefix"] = name
    conf.update({k: str(v) for k, v in cfg.spark.conf.items()})
    _config_volumes(spec.get("volumes", []), plan)
    driver, executor = spec["driver"], spec["executor"]
    driver["serviceAccount"] = executor["serviceAccount"] = c.spark_service_account
    for pod in (driver, executor):
        pod.setdefault("labels", {}).update({LABEL_RUN: plan.run_name})
        if _env_from(cfg):
            pod["envFrom"] = _env_from(cfg)
    for key, value in (("cores", c.driver_cores), ("memory", c.driver_memory)):
        if value is not None:
            driver[key] = value
    for key, value in (("instances", c.executor_instances), ("cores", c.executor_cores),
                       ("memory", c.executor_memory)):
        if value is not None:
            executor[key] = value
    return obj


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def render_ray(plan: RunPlan, stage: StagePlan, cfg: Config, templates: Path | None = None) -> dict:
    obj = load_template(stage.name, templates)
    c, spec = cfg.cluster, obj["spec"]
    _metadata(obj, plan, stage, cfg)
    entry = ["python", f"{IMAGE_ROOT}/jobs/{stage.name}.py", "--ray-address", "auto", *job_args(plan, stage)]
    spec["entrypoint"] = shlex.join(entry)
    spec.setdefault("metadata", {}).update({"mdr-run": plan.run_name, "mdr-config-hash": stage.config_hash})
    rc = spec["rayClusterSpec"]
    head = rc["headGroupSpec"]["template"]
    _config_volumes(head["spec"].get("volumes", []), plan)
    pods = [head, *(g["template"] for g in rc.get("workerGroupSpecs", []))]
    if "submitterPodTemplate" in spec:
        pods.append(spec["submitterPodTemplate"])
    for pod in pods:
        pod.setdefault("metadata", {}).setdefault("labels", {}).update({LABEL_RUN: plan.run_name})
        pod["spec"]["serviceAccountName"] = c.ray_service_account
        for ctr in _containers(pod):
            ctr["image"] = c.ray_image
            ctr["imagePullPolicy"] = c.image_pull_policy
            if _env_from(cfg):
                ctr["envFrom"] = _env_from(cfg)
    for group in rc.get("workerGroupSpecs", []):
        if c.ray_workers is not None:
            group["replicas"] = group["minReplicas"] = group["maxReplicas"] = c.ray_workers
        for ctr in _containers(group["template"]):
            res = ctr.setdefault("resources", {})
            for part in ("requests", "limits"):
                r = res.setdefault(part, {})
                if c.ray_worker_cpus is not None:
                    r["cpu"] = str(c.ray_worker_cpus)
                if c.ray_worker_memory is not None:
                    r["memory"] = c.ray_worker_memory
            if c.ray_worker_gpus:
                res["limits"]["nvidia.com/gpu"] = str(c.ray_worker_gpus)
    return obj


def render_stage(plan: RunPlan, stage: StagePlan, cfg: Config, templates: Path | None = None) -> dict:
    render = render_spark if stage.engine == "spark" else render_ray
    return render(plan, stage, cfg, templates)


def render_run(plan: RunPlan, cfg: Config, templates: Path | None = None) -> list[dict]:
    """The run's ConfigMap and one resource per stage still to run."""
    return [render_configmap(plan, cfg), *(render_stage(plan, s, cfg, templates) for s in plan.todo)]


# --------------------------------------------------------------------------- status

def stage_state(obj: dict) -> tuple[str, str, str]:
    """(phase: running|succeeded|failed, the operator's state, its message) of a SparkApplication or RayJob."""
    status = obj.get("status") or {}
    if obj["kind"] == "SparkApplication":
        app = status.get("applicationState") or {}
        state = app.get("state", "") or "NEW"
        phase = {"COMPLETED": "succeeded", "FAILED": "failed", "SUBMISSION_FAILED": "failed"}.get(state, "running")
        return phase, state, app.get("errorMessage", "")
    job, deploy = status.get("jobStatus", ""), status.get("jobDeploymentStatus", "")
    state = "/".join(x for x in (job, deploy) if x) or "NEW"
    message = status.get("message", "") or status.get("reason", "")
    if job == "SUCCEEDED":
        return "succeeded", state, message
    if job in ("FAILED", "STOPPED") or deploy == "Failed":
        return "failed", state, message
    return "running", state, message


def _same_run(cur: dict, obj: dict) -> bool:
    keys = ("mdr.dev/config-hash", "mdr.dev/config-sha", "mdr.dev/input", "mdr.dev/output")
    a, b = (o.get("metadata", {}).get("annotations") or {} for o in (cur, obj))
    return all(a.get(k) == b.get(k) for k in keys)


# --------------------------------------------------------------------------- the API

class ClusterApi(Protocol):
    def get(self, obj: dict) -> dict | None: ...

    def create(self, obj: dict) -> None: ...

    def replace(self, obj: dict) -> None: ...

    def delete(self, obj: dict) -> None: ...

    def pod_log(self, namespace: str, pod: str, tail: int) -> str: ...


class KubeApi:
    """The Kubernetes API through the official client: in-cluster credentials in a pod, else kubeconfig."""

    def __init__(self, context: str | None = None) -> None:
        try:
            from kubernetes import client, config
        except ImportError:
            raise ConfigError("--target k8s needs the Kubernetes client: pip install 'mdr[k8s]'") from None
        try:
            if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config()
            else:
                config.load_kube_config(context=context)
        except Exception as e:  # no kubeconfig, bad context: nothing was submitted
            raise ConfigError(f"cannot load Kubernetes credentials ({type(e).__name__}: {e}); "
                              f"check KUBECONFIG or --context") from None
        self.core, self.custom = client.CoreV1Api(), client.CustomObjectsApi()
        self._error = client.exceptions.ApiException

    def _call(self, what: str, fn: Callable[[], Any], missing_ok: bool = False) -> Any:
        try:
            return fn()
        except self._error as e:
            if missing_ok and e.status == 404:
                return None
            raise StageFailed(redact(f"Kubernetes API: {what}: {e.status} {e.reason}: {e.body}")) from None

    @staticmethod
    def _id(obj: dict) -> tuple[str, str, str]:
        m = obj["metadata"]
        return obj["kind"], m["namespace"], m["name"]

    def get(self, obj: dict) -> dict | None:
        kind, ns, name = self._id(obj)
        if kind == "ConfigMap":
            cm = self._call(f"read {kind} {ns}/{name}", lambda: self.core.read_namespaced_config_map(name, ns), True)
            return None if cm is None else self.core.api_client.sanitize_for_serialization(cm)
        g, v, plural = API[kind]
        return self._call(f"read {kind} {ns}/{name}",
                          lambda: self.custom.get_namespaced_custom_object(g, v, ns, plural, name), True)

    def create(self, obj: dict) -> None:
        kind, ns, name = self._id(obj)
        if kind == "ConfigMap":
            self._call(f"create {kind} {ns}/{name}", lambda: self.core.create_namespaced_config_map(ns, obj))
            return
        g, v, plural = API[kind]
        self._call(f"create {kind} {ns}/{name}",
                   lambda: self.custom.create_namespaced_custom_object(g, v, ns, plural, obj))

    def replace(self, obj: dict) -> None:
        kind, ns, name = self._id(obj)
        if kind != "ConfigMap":
            raise ValueError(f"replace {kind}: only ConfigMaps are replaced; stage resources are re-created")
        self._call(f"replace {kind} {ns}/{name}", lambda: self.core.replace_namespaced_config_map(name, ns, obj))

    def delete(self, obj: dict) -> None:
        kind, ns, name = self._id(obj)
        if kind == "ConfigMap":
            self._call(f"delete {kind} {ns}/{name}", lambda: self.core.delete_namespaced_config_map(name, ns), True)
            return
        g, v, plural = API[kind]
        self._call(f"delete {kind} {ns}/{name}", lambda: self.custom.delete_namespaced_custom_object(
            g, v, ns, plural, name, propagation_policy="Foreground"), True)

    def pod_log(self, namespace: str, pod: str, tail: int) -> str:
        try:
            return self.core.read_namespaced_pod_log(pod, namespace, tail_lines=tail)
        except self._error:
            return ""


# --------------------------------------------------------------------------- the target

@dataclass
class K8sTarget:
    """Applies each stage's resource, then waits on its status and its committed manifest."""
    cfg: Config
    api: ClusterApi | None = None
    context: str | None = None
    templates: Path | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    applied: list[dict] = field(default_factory=list)

    def _api(self) -> ClusterApi:
        if self.api is None:
            self.api = KubeApi(self.context)
        return self.api

    def manifests(self, plan: RunPlan) -> list[dict]:
        objs = render_run(plan, self.cfg, self.templates)
        check_no_secrets(dump_yaml(objs, all_docs=True), "the rendered manifests")
        return objs

    def describe(self, plan: RunPlan) -> str:
        head = [f"# mdr submit --target k8s --dry-run: nothing was applied",
                f"# run {plan.run_name}: root {plan.root}, namespace {self.cfg.cluster.namespace}, "
                f"config sha {plan.config_sha}"]
        for st in plan.stages:
            state = "committed, skipped" if st.committed else f"submit as {resource_name(plan, st)}"
            head.append(f"# stage {st.name} ({st.engine}, config {st.config_hash}): {state}")
        text = "\n".join(head) + "\n" + dump_yaml(self.manifests(plan), all_docs=True)
        check_no_secrets(text, "the k8s plan")
        return text

    def prepare(self, plan: RunPlan) -> None:
        cm = render_configmap(plan, self.cfg)
        check_no_secrets(dump_yaml(cm), "the run's ConfigMap")
        api = self._api()
        if api.get(cm) is None:
            api.create(cm)
        else:
            api.replace(cm)
        self.applied.append(cm)
        log(f"config {plan.config_sha} in ConfigMap {cm['metadata']['namespace']}/{cm['metadata']['name']}")

    def _recreate(self, obj: dict) -> None:
        """A resource of an earlier attempt of this run has the same name: delete it, wait, create anew."""
        api = self._api()
        if api.get(obj) is not None:
            log(f"deleting {obj['kind']} {obj['metadata']['name']} of an earlier attempt")
            api.delete(obj)
            deadline = self.clock() + 300
            while api.get(obj) is not None:
                if self.clock() > deadline:
                    raise StageFailed(f"{obj['kind']} {obj['metadata']['name']} of an earlier attempt is still "
                                      f"being deleted after 300s; delete it and re-submit")
                self.sleep(self.cfg.cluster.poll_s)
        api.create(obj)
        self.applied.append(obj)

    def run_stage(self, plan: RunPlan, stage: StagePlan, is_committed: Callable[[], bool]) -> None:
        obj = render_stage(plan, stage, self.cfg, self.templates)
        check_no_secrets(dump_yaml(obj), f"the {obj['kind']} of stage {stage.name}")
        cur = self._api().get(obj)
        if cur is not None and stage_state(cur)[0] == "running" and _same_run(cur, obj):
            # the orchestrator stopped while this stage ran (same config, same input): wait for it again
            log(f"{stage.name}: {obj['kind']} {obj['metadata']['name']} is still running; waiting for it")
        else:
            self._recreate(obj)
        self._wait(obj, stage, is_committed)

    def _wait(self, obj: dict, stage: StagePlan, is_committed: Callable[[], bool]) -> None:
        kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        started, last = self.clock(), None
        while True:
            cur = self._api().get(obj)
            if cur is None:  # removed (TTL, by hand): only a committed manifest says it worked
                if is_committed():
                    return
                raise StageFailed(f"stage {stage.name}: {kind} {ns}/{name} disappeared before {stage.output} "
                                  f"was committed")
            phase, state, message = stage_state(cur)
            if state != last:
                log(f"{stage.name}: {kind} {name}: {state}")
                last = state
            if phase == "succeeded":
                return
            if phase == "failed":
                detail = self._driver_errors(cur) if kind == "SparkApplication" else ""
                raise StageFailed(redact(f"stage {stage.name} failed ({kind} {ns}/{name}: {state})"
                                         + (f": {message}" if message else "") + (f"\n{detail}" if detail else "")))
            if self.clock() - started > self.cfg.cluster.stage_timeout_s:
                raise StageFailed(f"stage {stage.name}: {kind} {ns}/{name} still {state} after "
                                  f"{self.cfg.cluster.stage_timeout_s:.0f}s (cluster.stage_timeout_s); it keeps "
                                  f"running; re-submit later to pick up its result")
            self.sleep(self.cfg.cluster.poll_s)

    def _driver_errors(self, obj: dict) -> str:
        pod = ((obj.get("status") or {}).get("driverInfo") or {}).get("podName")
        if not pod:
            return ""
        lines = self._api().pod_log(obj["metadata"]["namespace"], pod, 200).splitlines()
        picked = [ln for ln in lines if ln.startswith("mdr: ")] or lines[-20:]
        return "\n".join(picked)
