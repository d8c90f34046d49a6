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
import re
import sys
from dataclasses import replace

import yaml

from pipeline.cluster.plan import RunPlan, StagePlan, Target, check_conf_secrets, check_no_secrets, log
from pipeline.core.config import Config, ConfigError
from pipeline.core.dataset import read_manifest
from pipeline.core.stage import StageFailed
from pipeline.core.storage import Storage, StorageError, scheme
from pipeline.run.runner import registry, stage_hash, stage_output

SPARK_STAGES = ("extract", "filter", "dedup_fuzzy", "dedup_exact")
RAY_STAGES = ("quality",)
ENGINES = {**{s: "spark" for s in SPARK_STAGES}, **{s: "ray" for s in RAY_STAGES}}


def default_run_name(root: str) -> str:
    """Stable per output root, so re-submitting a run finds (and replaces) its own resources."""
    return "mdr-" + hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:8]


_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$")


def check_run_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"--run-name {name!r}: use 2-30 lowercase letters, digits and '-', starting with a letter "
                          f"(it names Kubernetes resources and Spark applications)")
    return name


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
