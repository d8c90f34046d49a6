"""`mdr submit`: run the pipeline on a cluster, one stage after another, orchestrated over object storage.

The orchestrator plans the run (stage inputs/outputs under one root, each stage's config hash), skips
stages whose manifest is already committed with the same config and input, hands each remaining stage
to a target (``pipeline.cluster.submit_spark``: spark-submit command lines; ``pipeline.cluster.submit_k8s``:
SparkApplication/RayJob manifests), waits for it, and checks that its manifest is committed before
starting the next one. What goes to the cluster is the effective config as one YAML file; it never
holds credentials (they come from the cluster: Kubernetes secrets, IRSA, workload identity).
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import yaml

from pipeline.core.config import Config, ConfigError
from pipeline.core.dataset import read_manifest
from pipeline.core.storage import Storage, StorageError, scheme
from pipeline.run.runner import StageFailed, registry, stage_hash, stage_output

SPARK_STAGES = ("extract", "filter", "dedup_fuzzy", "dedup_exact")
RAY_STAGES = ("quality",)
ENGINES = {**{s: "spark" for s in SPARK_STAGES}, **{s: "ray" for s in RAY_STAGES}}
CONFIG_FILE = "mdr-config.yaml"

# values of these variables must never appear in anything mdr renders, prints or ships
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
              "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN", "HF_TOKEN")
_SECRET_KEY = re.compile(r"secret|passw|token|access[._-]?key", re.IGNORECASE)
_SECRET_REF = re.compile(r"secretKeyRef|\.secrets\.|provider$", re.IGNORECASE)  # names of secrets, not values


# --------------------------------------------------------------------------- secrets

def _secret_values() -> dict[str, str]:
    return {k: v for k in SECRET_ENV if len(v := os.environ.get(k, "")) >= 4}


def check_no_secrets(text: str, what: str) -> None:
    """Refuse to ship or print ``text`` when a credential from the environment appears in it."""
    for name, value in _secret_values().items():
        if value in text:
            raise ConfigError(f"{what} would contain the value of ${name}; credentials must come from the cluster "
                              f"(a Kubernetes secret named by cluster.credentials_secret, IRSA or workload identity), "
                              f"never from the config or the command line")


def redact(text: str) -> str:
    """Driver output and API messages are printed; any credential value in them is masked first."""
    for name, value in _secret_values().items():
        text = text.replace(value, f"<${name}>")
    return text


def check_conf_secrets(conf: dict[str, str], where: str) -> None:
    """A credential in a Spark setting would be shipped in plain text: refuse it by its key's name."""
    for key, value in conf.items():
        if value and _SECRET_KEY.search(key) and not _SECRET_REF.search(key):
            raise ConfigError(f"{where} {key}: looks like a credential; put credentials in a Kubernetes secret "
                              f"(cluster.credentials_secret) or use IRSA/workload identity/instance roles instead")


# --------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class StagePlan:
    name: str
    engine: str          # spark | ray
    input: str
    output: str
    config_hash: str     # the hash the stage's manifest must carry
    committed: bool      # already committed with this config and input (skipped)


@dataclass
class RunPlan:
    run_name: str
    root: str
    input: str
    stages: list[StagePlan]
    config_yaml: str     # the effective config shipped to the cluster
    force: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def config_sha(self) -> str:
        return hashlib.sha256(self.config_yaml.encode()).hexdigest()[:12]

    @property
    def todo(self) -> list[StagePlan]:
        return [s for s in self.stages if not s.committed]


def default_run_name(root: str) -> str:
    """Stable per output root, so re-submitting a run finds (and replaces) its own resources."""
    return "mdr-" + hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:8]


_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$")


def check_run_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"--run-name {name!r}: use 2-30 lowercase letters, digits and '-', starting with a letter "
                          f"(it names Kubernetes resources and Spark applications)")
    return name


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the config inside a ConfigMap) as readable literal blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def dump_yaml(data, *, all_docs: bool = False) -> str:
    opts = dict(Dumper=_BlockDumper, sort_keys=False, width=10_000, allow_unicode=True)
    return yaml.dump_all(data, **opts) if all_docs else yaml.dump(data, **opts)


def shipped_config(cfg: Config, *, input_uri: str, root: str, stages: list[str], spark_master: str | None,
                   ray_address: str | None) -> str:
    """The effective config as one self-contained YAML file, with the cluster's Spark master and Ray address."""
    data = cfg.to_dict()
    data["run"].update(input=input_uri, output=root, stages=list(stages))
    if spark_master:
        data["spark"]["master"] = spark_master
    if ray_address:
        data["ray"]["address"] = ray_address
    text = ("# mdr configuration shipped by `mdr submit` (effective values; no credentials)\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=10_000))
    check_no_secrets(text, "the shipped config")
    return text


def committed_manifest(store: Storage, cfg: Config, stage: str, input_uri: str, output_uri: str) -> dict | None:
    """The stage's manifest when it is committed with this config and this input, else None."""
    spec = registry()[stage]
    man = read_manifest(store, output_uri)
    if not man or man.get("config_hash") != stage_hash(cfg, spec):
        return None
    try:
        inp = spec.resolve_input(store, cfg, input_uri)
    except StorageError:
        return None
    return man if man.get("input", {}).get("fingerprint") == inp.fingerprint else None


def _local_uris(cfg: Config) -> list[str]:
    """Config keys naming a local file, which a cluster cannot read."""
    found = []

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif k.endswith("_uri") and isinstance(v, str) and scheme(v) == "file":
                found.append(f"{prefix}{k}={v}")
    walk(cfg.to_dict(), "")
    return found


def plan_run(cfg: Config, store: Storage, *, input_uri: str | None, root: str | None, stages: list[str],
             run_name: str | None, force: bool, spark_master: str | None, ray_address: str | None,
             needs_remote: bool) -> RunPlan:
    """Which stages run, where each reads and writes, and which are already committed."""
    check_conf_secrets(cfg.spark.conf, "spark.conf:")
    known = registry()
    for name in stages:
        if name not in ENGINES:
            raise ConfigError(f"run.stages: {name!r} cannot be submitted; stages: {', '.join(ENGINES)}")
        if name not in known:
            raise ConfigError(f"run.stages: stage {name!r} is not available in this build; "
                              f"available: {', '.join(known)}")
    src = input_uri or cfg.run.input
    if not src:
        raise ConfigError("run.input: no input given; pass --input URI (a WARC, a folder of WARCs, or warc.paths.gz)")
    root = (root or cfg.run.output).rstrip("/")
    warnings = []
    if needs_remote:
        for what, uri in (("--output", root), ("--input", src)):
            if scheme(uri) == "file":
                raise ConfigError(f"{what} {uri}: a cluster cannot read this machine's files; use an object-storage "
                                  f"URI (s3://bucket/prefix)")
        warnings += [f"{kv}: a local path; the cluster's pods cannot read it" for kv in _local_uris(cfg)]
    plans, upstream_todo = [], False
    for name in stages:
        out = stage_output(root, name)
        spec = known[name]
        done = False
        if not force and not upstream_todo:
            done = committed_manifest(store, cfg, name, src, out) is not None
        upstream_todo = upstream_todo or not done
        plans.append(StagePlan(name, ENGINES[name], src, out, stage_hash(cfg, spec), done))
        src = out
    name = check_run_name(run_name or default_run_name(root))
    first = input_uri or cfg.run.input
    text = shipped_config(cfg, input_uri=first, root=root, stages=stages, spark_master=spark_master,
                          ray_address=ray_address)
    return RunPlan(name, root, first, plans, text, force, warnings)


# --------------------------------------------------------------------------- orchestration

class Target(Protocol):
    """Where stages run: builds what is submitted (``describe`` prints it) and runs one stage to its end."""

    def describe(self, plan: RunPlan) -> str: ...

    def prepare(self, plan: RunPlan) -> None: ...

    def run_stage(self, plan: RunPlan, stage: StagePlan, is_committed: Callable[[], bool]) -> None: ...


def log(msg: str) -> None:
    print(redact(f"[submit] {msg}"), file=sys.stderr, flush=True)


def submit_run(cfg: Config, store: Storage, plan: RunPlan, target: Target) -> list[dict]:
    """Run the planned stages in order; a failed stage raises StageFailed and the later ones never start."""
    for w in plan.warnings:
        log(f"warning: {w}")
    target.prepare(plan)
    manifests = []
    for st in plan.stages:
        if not plan.force:
            man = committed_manifest(store, cfg, st.name, st.input, st.output)
            if man is not None:
                log(f"{st.name}: committed at {st.output} (config {st.config_hash}); skipped")
                manifests.append(man)
                continue
        log(f"{st.name}: submitting ({st.engine}) {st.input} -> {st.output} (config {st.config_hash})")
        st = replace(st, committed=False)
        target.run_stage(plan, st, lambda st=st: committed_manifest(store, cfg, st.name, st.input,
                                                                     st.output) is not None)
        man = committed_manifest(store, cfg, st.name, st.input, st.output)
        if man is None:
            raise StageFailed(f"stage {st.name}: the job finished but {st.output} has no manifest committed with "
                              f"config {st.config_hash}; see the job's log; re-submit to retry")
        c = man["counts"]
        log(f"{st.name}: committed {man['rows']:,} rows in {len(man['parts'])} parts: in={c['in']:,} "
            f"kept={c['kept']:,}")
        manifests.append(man)
    return manifests


# --------------------------------------------------------------------------- command line

def cli_submit(args) -> int:
    """`mdr submit`: plan, then print (--dry-run) or run each stage on the chosen target."""
    from pipeline.core.config import load_config
    overrides = list(args.overrides)
    if args.stages:
        overrides.append(f"run.stages=[{args.stages}]")
    for flag, key in (("namespace", "namespace"), ("spark_image", "spark_image"), ("ray_image", "ray_image")):
        if getattr(args, flag):
            overrides.append(f"cluster.{key}={getattr(args, flag)}")
    cfg = load_config(args.preset, overrides)
    store = Storage(cfg.storage)
    conf = {}
    for item in args.conf:
        if "=" not in item:
            raise ConfigError(f"--conf {item!r}: expected key=value")
        k, v = item.split("=", 1)
        conf[k] = v
    check_conf_secrets(conf, "--conf")
    if args.target == "k8s":
        from pipeline.cluster.submit_k8s import K8S_MASTER, K8sTarget
        target = K8sTarget(cfg, context=args.context, templates=args.templates)
        master, ray_address, needs_remote = K8S_MASTER, "auto", True
    else:
        from pipeline.cluster.submit_spark import SparkSubmitTarget
        master = args.master or cfg.spark.master
        ray_address = args.ray_address or cfg.ray.address
        target = SparkSubmitTarget(cfg, master, deploy_mode=args.deploy_mode, package=args.package,
                                   archives=list(args.archives), python=args.python,
                                   driver_python=args.driver_python, spark_submit=args.spark_submit, conf=conf,
                                   staging_dir=args.staging_dir, ray_address=ray_address)
        needs_remote = not master.startswith("local")
    plan = plan_run(cfg, store, input_uri=args.input, root=args.output, stages=list(cfg.run.stages),
                    run_name=args.run_name, force=args.force, spark_master=master, ray_address=ray_address,
                    needs_remote=needs_remote)
    from pipeline.run.preflight import check_submit  # buckets, credentials, input, remote models: before submitting
    plan.warnings += check_submit(store, cfg, [s.name for s in plan.stages], plan.input, plan.root,
                                  dry_run=args.dry_run)
    if args.dry_run:
        sys.stdout.write(target.describe(plan))
        for w in plan.warnings:
            log(f"warning: {w}")
        return 0
    manifests = submit_run(cfg, store, plan, target)
    if manifests:
        last = manifests[-1]
        print(f"done: {last['rows']:,} documents in {plan.root}/{last['stage']} (see `mdr status {plan.root}`)")
    return 0
