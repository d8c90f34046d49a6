"""Stage runner: decides whether a stage must run, runs it, checks conservation, commits its manifest."""
from __future__ import annotations

import hashlib
import re
import sys
import time

from pipeline.core.config import Config, ConfigError
from pipeline.core.dataset import (InputDataset, build_manifest, commit, open_input, read_manifest,
                                   read_manifest_versioned, verify_parts)
from pipeline.core.output_lease import OutputRun, collect_garbage, hold_output
from pipeline.core.stage import StageContext, StageFailed, StageResult, StageSpec
from pipeline.core.storage import Storage, StorageError, join


def stage_hash(cfg: Config, spec: StageSpec) -> str:
    """What a committed output must carry to be reused: the hash of the stage's config sections and logic version."""
    key = f"{cfg.section_hash(*spec.sections)}:logic{spec.logic_version}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def registry() -> dict[str, StageSpec]:
    """Implemented stages (imported lazily, so `mdr --help` stays fast)."""
    from pipeline.stages import STAGES
    return STAGES


def validate_stages(names: list[str]) -> None:
    known = registry()
    for n in names:
        if n not in known:
            raise ConfigError(f"run.stages: stage {n!r} is not available; available stages: {', '.join(known)}")


def run_stage(cfg: Config, name: str, input_uri: str, output_uri: str, *, force: bool = False,
              retry_failed: bool = False, master: str | None = None, spark=None, _checked: bool = False) -> dict:
    """Run one stage from ``input_uri`` into ``output_uri``; a no-op when its manifest matches and every part it
    lists is there. One run per output at a time (``pipeline.core.output_lease``). ``retry_failed``: a stage committed
    with failed inputs under the same config runs those files again, keeping its other tasks."""
    validate_stages([name])
    spec = registry()[name]
    store = Storage(cfg.storage)
    from pipeline.run.preflight import check_output, check_overlap, check_stage
    if not _checked:  # before any work: output writable, models and lists sound (pipeline.run.preflight)
        check_output(store, output_uri)
    inp = spec.resolve_input(store, cfg, input_uri)
    check_overlap(store, name, inp, output_uri)
    if not _checked:
        check_stage(store, cfg, name, output_uri)
    with hold_output(store, cfg, output_uri, name) as run:
        existing, seen = read_manifest_versioned(store, output_uri)  # a commit after this makes ours fail
        config_hash = stage_hash(cfg, spec)
        failed = (existing or {}).get("failed_inputs") or []
        retry = retry_failed and not force and bool(failed) and existing.get("config_hash") == config_hash
        if existing and not force and existing.get("logic_version") != spec.logic_version:
            print(f"[{name}] note: {output_uri} was committed by logic version {existing.get('logic_version') or 'none'} "
                  f"of this stage; this code has logic version {spec.logic_version}: running it again", file=sys.stderr)
        elif (existing and not force and not retry and existing.get("config_hash") == config_hash
                and existing.get("input", {}).get("fingerprint") == inp.fingerprint):
            problems = verify_parts(store, output_uri, existing)
            if not problems:
                c = existing["counts"]
                more = f"; {len(failed)} failed inputs (--retry-failed runs them again)" if failed else ""
                print(f"[{name}] already committed at {output_uri} (config {config_hash}): in={c['in']:,} "
                      f"kept={c['kept']:,}; nothing to do (--force re-runs){more}", file=sys.stderr)
                return existing
            print(f"[{name}] the manifest at {output_uri} lists {len(problems)} part files that are missing or "
                  f"changed ({'; '.join(problems[:3])}): running the stage again", file=sys.stderr)
        ctx = StageContext(cfg, store, name, inp, output_uri, config_hash, force=force, _spark=spark, master=master,
                           run_id=run.run_id, retry_of=existing if retry else None,
                           shuffle_factor=spec.shuffle_factor)
        if retry:
            print(f"[{name}] retrying the {len(failed)} failed inputs of the committed stage; its other tasks are kept",
                  file=sys.stderr)
        return _run_and_commit(spec, ctx, run, seen)


def _run_and_commit(spec: StageSpec, ctx: StageContext, run: OutputRun, seen: str | None) -> dict:
    cfg, store, name, inp, output_uri = ctx.cfg, ctx.store, ctx.stage, ctx.input, ctx.output
    started = time.time()
    print(f"[{name}] {inp.uri} -> {output_uri} ({len(inp.parts)} input files, config {ctx.config_hash}, "
          f"run {run.run_id})", file=sys.stderr)
    try:
        result = _empty_result(store, inp) if inp.rows == 0 and not inp.parts else spec.run(ctx)
    except (StageFailed, StorageError, ConfigError, KeyboardInterrupt):
        raise
    except Exception as e:  # a Spark/Ray job failed after its retries: one line saying why, never a Java trace
        raise job_error(name, e) from e
    if inp.rows is not None and result.counts.n_in != inp.rows:
        raise StageFailed(f"stage {name}: input has {inp.rows:,} committed rows but the stage counted "
                          f"{result.counts.n_in:,} in; not committed")
    failed_share = len(result.failed_inputs) / max(1, len(inp.parts))
    if failed_share > cfg.run.max_failed_input_share:
        first = result.failed_inputs[0]
        raise StageFailed(f"stage {name}: {len(result.failed_inputs)} of {len(inp.parts)} input files failed "
                          f"({failed_share:.0%} > run.max_failed_input_share={cfg.run.max_failed_input_share}); "
                          f"first: {first['file']}: {first['error']}")
    from pipeline.core.unique_ids import check_unique_ids
    check_unique_ids(ctx, result, spec.engine)
    if ctx.shuffle_partitions is not None and spec.engine == "spark":
        result.stats.setdefault("shuffle_partitions", ctx.shuffle_partitions)
    manifest = build_manifest(stage=name, config_hash=ctx.config_hash, input_desc=inp.describe(), parts=result.parts,
                              rejects=result.rejects, schema=result.schema, counts=result.counts,
                              failed_inputs=result.failed_inputs, started=started, stats=result.stats,
                              params=result.params, logic_version=spec.logic_version)
    problems = verify_parts(store, output_uri, manifest)
    if problems:
        raise StageFailed(f"stage {name}: {len(problems)} part files this run wrote are missing or changed before its "
                          f"commit ({'; '.join(problems[:3])}): did another process clean up {output_uri}? Nothing "
                          f"was committed; re-run the same command")
    run.check()  # LeaseLost (exit 4) when another run took the output over
    commit(store, output_uri, manifest, expect=seen)
    collect_garbage(store, output_uri, manifest, run)
    c = manifest["counts"]
    removed = ", ".join(f"{k}={v:,}" for k, v in c["removed"].items()) or "none"
    records = manifest.get("stats", {}).get("records")
    of = f" HTTP responses of {records:,} WARC records" if name == "extract" and records is not None else ""
    print(f"[{name}] committed {manifest['rows']:,} rows in {len(manifest['parts'])} parts "
          f"({manifest['timings']['seconds']:.1f}s): in={c['in']:,}{of} kept={c['kept']:,} removed: {removed}",
          file=sys.stderr)
    return manifest


_PY_ERROR = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit)): (.+)$")


def job_error(stage: str, e: BaseException) -> Exception:
    """A failed Spark job's error (Py4J/captured exceptions carry the worker's traceback and the JVM's) as one
    line: the worker's own exception. A storage error there is a StorageError (exit 3), the rest StageFailed."""
    from udfs.langid import ModelError
    if isinstance(e, ModelError):
        return e
    text = str(e)
    found = [m for m in (_PY_ERROR.match(line) for line in text.splitlines()) if m]
    py = [m for m in found if not m.group(1).startswith(("org.", "java.", "py4j.", "scala."))]
    storage = [m for m in py if m.group(1).endswith("StorageError")]
    pick = (storage or py or found or [None])[-1]
    what = f"{pick.group(1).rsplit('.', 1)[-1]}: {pick.group(2).strip()}" if pick else f"{type(e).__name__}: {text[:300]}"
    crashed = "Python worker exited unexpectedly" in text or "crashed" in text.lower()
    if crashed and not storage:
        what = f"a Python worker kept crashing (killed, out of memory?): {what}"
    msg = (f"stage {stage}: a task failed after its retries: {what[:1500]}; nothing was committed; fix the cause and "
           f"re-run the same command (finished tasks are kept)")
    return StorageError(msg) if storage else StageFailed(msg)


def _empty_result(store: Storage, inp: InputDataset) -> StageResult:
    """A committed input without documents (an earlier stage removed them all) commits an empty output."""
    import pyarrow as pa
    from pipeline.core.dataset import Counts

    def arrow_type(name: str):
        try:
            return pa.type_for_alias(name)
        except (ValueError, KeyError):
            return pa.string()
    fields = (read_manifest(store, inp.uri) or {}).get("schema", [])
    schema = pa.schema([(f["name"], arrow_type(f["type"])) for f in fields])
    return StageResult([], [], schema, Counts(), [], {"empty_input": True}, {})


def stage_output(root: str, name: str) -> str:
    return join(root, name)


def run_pipeline(cfg: Config, *, input_uri: str | None = None, output_root: str | None = None,
                 force: bool = False, retry_failed: bool = False, master: str | None = None) -> list[dict]:
    """`mdr run`: the configured stages in order, each reading the previous stage's dataset."""
    stages = cfg.run.stages
    validate_stages(stages)
    src = input_uri or cfg.run.input
    if not src:
        raise ConfigError("run.input: no input given; pass --input URI (a WARC, a folder of WARCs, or warc.paths.gz)")
    root = output_root or cfg.run.output
    from pipeline.run.preflight import check_run
    check_run(Storage(cfg.storage), cfg, stages, src, root)  # a bad model or bucket fails now, not after hours
    manifests = []
    for name in stages:
        out = stage_output(root, name)
        m = run_stage(cfg, name, src, out, force=force, retry_failed=retry_failed, master=master, _checked=True)
        manifests.append(m)
        src = out
    publish_run(Storage(cfg.storage), root)
    return manifests


def publish_run(store: Storage, root: str) -> None:
    """After `mdr run`: the dataset card (README.md) and report.html/report.json in the output root."""
    from pipeline.reports.card import write_card
    from pipeline.reports.report import write_report
    try:
        card = write_card(store, root)
        html_uri, _ = write_report(store, root)
    except (StorageError, OSError, ValueError, KeyError) as e:  # the data is committed; say how to retry
        print(f"[report] could not write the report or dataset card: {type(e).__name__}: {e}; "
              f"retry with `mdr report {root}`", file=sys.stderr)
        return
    print(f"[report] dataset card: {card}\n[report] report: {html_uri}", file=sys.stderr)
