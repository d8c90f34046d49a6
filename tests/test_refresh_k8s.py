"""k8s/refresh/: the nightly CronJob that runs `mdr refresh --target k8s` validates as Kubernetes objects, has the
scheduling guarantees the refresh relies on, and its config loads and passes the refresh's own checks."""
from pathlib import Path

import yaml

from pipeline.cluster.plan import check_no_secrets
from pipeline.core.config import load_config
from pipeline.refresh.nightly import check_config
from tests.conftest import ROOT
from tests.test_k8s_manifests import validate_builtin

REFRESH = ROOT / "k8s" / "refresh"


def _objects() -> dict[str, dict]:
    kust = yaml.safe_load((REFRESH / "kustomization.yaml").read_text())
    assert kust["namespace"] == "mdr" and set(kust) <= {"apiVersion", "kind", "namespace", "labels", "resources"}
    objs = {}
    for res in kust["resources"]:
        for obj in yaml.safe_load_all((REFRESH / res).read_text()):
            validate_builtin(obj)
            assert obj["metadata"]["namespace"] == "mdr"
            objs[obj["kind"]] = obj
    return objs


def test_cronjob_runs_one_refresh_a_night_and_never_two(tmp_path: Path):
    objs = _objects()
    cj = objs["CronJob"]["spec"]
    assert cj["concurrencyPolicy"] == "Forbid"
    minute, hour, *rest = cj["schedule"].split()
    assert rest == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()  # once a day
    assert cj["startingDeadlineSeconds"] > 0 and cj["successfulJobsHistoryLimit"] >= 1
    assert cj["failedJobsHistoryLimit"] >= 1
    job = cj["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] < 86_400 and job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "mdr-orchestrator" and pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    cmd = c["command"]
    assert cmd[:2] == ["mdr", "refresh"] and cmd[cmd.index("--target") + 1] == "k8s"
    config_path = Path(cmd[cmd.index("--config") + 1])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = objs["ConfigMap"]
    assert volume["configMap"]["name"] == cm["metadata"]["name"] and config_path.name in cm["data"]

    text = cm["data"][config_path.name]
    check_no_secrets(text, "the refresh ConfigMap")
    (tmp_path / "config.yaml").write_text(text)
    cfg = load_config(str(tmp_path / "config.yaml"))
    check_config(cfg, "k8s")  # state in object storage, stages that include both dedup stages
    assert cfg.refresh.state.startswith("s3://") and cfg.refresh.heartbeat_s * 3 <= cfg.refresh.lease_ttl_s
    assert cfg.refresh.lease_ttl_s < job["activeDeadlineSeconds"]  # a killed night blocks less than a night
