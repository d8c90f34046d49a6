"""k8s/: the cluster setup validates as Kubernetes objects; stage templates and the manifests `mdr submit`
renders validate against the operators' CRD fields (tests/crds/) and their pod parts as core objects."""
import json
from pathlib import Path

import pytest
import yaml

from pipeline.cluster.plan import RunPlan, StagePlan
from pipeline.cluster.submit_k8s import TEMPLATE_FILES, render_configmap, render_stage
from tests.conftest import ROOT

K8S = ROOT / "k8s"
CRDS = Path(__file__).parent / "crds"
SCHEMAS = {"SparkApplication": "sparkapplication-v1beta2.schema.json", "RayJob": "rayjob-v1.schema.json"}


def _kv():
    return pytest.importorskip("kubernetes_validate",
                               reason="kubernetes-validate is not installed: pip install -e '.[test]'")


def validate_builtin(obj: dict) -> None:
    kv = _kv()
    kv.validate(obj, kv.latest_version(), strict=True)


def validate_crd(obj: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed: pip install -e '.[test]'")
    schema = json.loads((CRDS / SCHEMAS[obj["kind"]]).read_text())
    jsonschema.validate(obj, schema, cls=jsonschema.Draft202012Validator)


def _pod(name: str, pod_spec: dict, spec: dict, image: str) -> dict:
    """The core parts of a SparkApplication driver/executor spec, as the Pod the operator makes of them."""
    container = {"name": "spark-kubernetes-driver", "image": image}
    for key in ("volumeMounts", "envFrom", "env", "securityContext"):
        if key in pod_spec:
            container[key] = pod_spec[key]
    podspec = {"containers": [container]}
    if "volumes" in spec:
        podspec["volumes"] = spec["volumes"]
    if "podSecurityContext" in pod_spec:
        podspec["securityContext"] = pod_spec["podSecurityContext"]
    if "serviceAccount" in pod_spec:
        podspec["serviceAccountName"] = pod_spec["serviceAccount"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": pod_spec.get("labels", {})},
            "spec": podspec}


def validate_stage_object(obj: dict) -> None:
    validate_crd(obj)
    spec = obj["spec"]
    if obj["kind"] == "SparkApplication":
        for part in ("driver", "executor"):
            validate_builtin(_pod(f"{obj['metadata']['name']}-{part}", spec[part], spec, spec["image"]))
    else:
        rc = spec["rayClusterSpec"]
        templates = [rc["headGroupSpec"]["template"], *(g["template"] for g in rc.get("workerGroupSpecs", []))]
        if "submitterPodTemplate" in spec:
            templates.append(spec["submitterPodTemplate"])
        for i, t in enumerate(templates):
            validate_builtin({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"t{i}"}, "template": t})


def test_kustomization_lists_valid_cluster_objects():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kust["kind"] == "Kustomization"
    assert set(kust) <= {"apiVersion", "kind", "namespace", "labels", "resources"}
    kinds = []
    for res in kust["resources"]:
        for obj in yaml.safe_load_all((K8S / res).read_text()):
            if obj is None:
                continue
            validate_builtin(obj)
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == kust["namespace"]
            kinds.append((obj["kind"], obj["metadata"]["name"]))
    for name in ("mdr-orchestrator", "mdr-spark"):
        assert ("ServiceAccount", name) in kinds and ("Role", name) in kinds and ("RoleBinding", name) in kinds
    assert ("ServiceAccount", "mdr-ray") in kinds


def test_orchestrator_role_covers_what_submit_calls():
    role = next(o for o in yaml.safe_load_all((K8S / "rbac.yaml").read_text())
                if o and o["kind"] == "Role" and o["metadata"]["name"] == "mdr-orchestrator")
    allowed = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    for group, resource in (("sparkoperator.k8s.io", "sparkapplications"), ("ray.io", "rayjobs")):
        for verb in ("get", "create", "delete"):
            assert (group, resource, verb) in allowed
    for verb in ("get", "create", "update"):
        assert ("", "configmaps", verb) in allowed
    assert ("", "pods/log", "get") in allowed


def test_orchestrator_role_allows_every_call_the_client_makes():
    """Every Kubernetes client call KubeApi can make, recorded as (API group, resource, RBAC verb), is allowed."""
    client = pytest.importorskip("kubernetes.client", reason="the k8s extra is not installed: pip install -e '.[k8s]'")
    from pipeline.cluster.submit_k8s import API, KubeApi
    calls = []

    class Recorder:
        def __init__(self, real: type) -> None:
            self.real = real

        def __getattr__(self, method: str):
            assert hasattr(self.real, method), f"{self.real.__name__} has no {method}"  # the real client's names

            def call(*args, **kwargs):
                calls.append((method, args))
                if method == "get_namespaced_custom_object":
                    return {"kind": "x", "metadata": {}}
                if method == "read_namespaced_config_map":
                    return client.V1ConfigMap(data={})
                return "log line" if method == "read_namespaced_pod_log" else None
            return call

    api = object.__new__(KubeApi)
    api.core, api.custom = Recorder(client.CoreV1Api), Recorder(client.CustomObjectsApi)
    api.core.api_client = client.ApiClient()
    api._error = client.exceptions.ApiException
    for kind in ("ConfigMap", *API):
        obj = {"kind": kind, "metadata": {"namespace": "mdr", "name": "r"}}
        api.get(obj)
        api.create(obj)
        api.delete(obj)
        if kind == "ConfigMap":
            api.replace(obj)
    api.pod_log("mdr", "r-driver", 10)
    verbs = {"read": "get", "get": "get", "create": "create", "replace": "update", "delete": "delete",
             "patch": "patch", "list": "list"}
    needed = set()
    for method, args in calls:
        verb = verbs[method.split("_", 1)[0]]
        if method.endswith("_custom_object"):
            needed.add((args[0], args[3], verb))   # group, version, namespace, plural
        elif method.endswith("_pod_log"):
            needed.add(("", "pods/log", verb))
        else:
            assert method.endswith("_config_map"), method
            needed.add(("", "configmaps", verb))
    role = next(o for o in yaml.safe_load_all((K8S / "rbac.yaml").read_text())
                if o and o["kind"] == "Role" and o["metadata"]["name"] == "mdr-orchestrator")
    allowed = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert len(needed) == 11 and needed <= allowed, sorted(needed - allowed)


@pytest.mark.parametrize("stage", sorted(TEMPLATE_FILES))
def test_stage_templates_validate(stage):
    obj = yaml.safe_load((K8S / "stages" / TEMPLATE_FILES[stage]).read_text())
    validate_stage_object(obj)


def test_stage_templates_name_our_spark_and_ray_versions():
    """The operators start the Spark/Ray version the templates name: the one the images and pyproject pin."""
    import importlib.metadata
    for stage, file in TEMPLATE_FILES.items():
        obj = yaml.safe_load((K8S / "stages" / file).read_text())
        if obj["kind"] == "SparkApplication":
            assert obj["spec"]["sparkVersion"] == importlib.metadata.version("pyspark"), stage
        else:
            assert obj["spec"]["rayClusterSpec"]["rayVersion"] == importlib.metadata.version("ray"), stage
            assert obj["spec"]["shutdownAfterJobFinishes"] is True


def _plan(stages: list[str]) -> RunPlan:
    engines = {"quality": "ray"}
    plans, src = [], "s3://bucket/crawl/warc.paths.gz"
    for s in stages:
        out = f"s3://bucket/runs/r1/{s}"
        plans.append(StagePlan(s, engines.get(s, "spark"), src, out, "0123456789ab", False))
        src = out
    return RunPlan("mdr-test1234", "s3://bucket/runs/r1", plans[0].input, plans, "run: {}\n", force=True)


@pytest.mark.parametrize("secret", [None, "mdr-s3"])
def test_rendered_manifests_validate(cfg_factory, secret):
    overrides = ["cluster.executor_memory=6g", "cluster.ray_workers=3", "cluster.ray_worker_gpus=1"]
    if secret:
        overrides.append(f"cluster.credentials_secret={secret}")
    cfg = cfg_factory(*overrides)
    plan = _plan(sorted(TEMPLATE_FILES, key=list(TEMPLATE_FILES).index))
    validate_builtin(render_configmap(plan, cfg))
    for st in plan.stages:
        obj = render_stage(plan, st, cfg)
        validate_stage_object(obj)
        assert obj["metadata"]["name"] == f"mdr-test1234-{st.name.replace('_', '-')}"


def test_schema_catches_a_misspelled_field():
    obj = yaml.safe_load((K8S / "stages" / "spark-extract.yaml").read_text())
    obj["spec"]["executor"]["instance"] = 3
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(obj)
    obj = yaml.safe_load((K8S / "stages" / "ray-quality.yaml").read_text())
    obj["spec"]["shutdownAfterJobFinish"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(obj)
