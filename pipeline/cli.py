"""`mdr`: run the pipeline, one stage, or inspect a run.

Exit codes: 0 success; 1 a stage failed (its error is printed); 2 bad usage or configuration
(nothing was processed); 3 storage or model could not be reached/read (nothing was committed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import __version__

EPILOG = """\
configuration:
  Settings come from a preset (configs/<name>.yaml, default: refinedweb) or a YAML file given with
  --config, then --set key=value overrides (e.g. --set extract.timeout_s=5 --set run.audit=full).
  `mdr config` prints every key with its default and meaning.

exit codes:
  0 success, 1 a stage failed, 2 bad usage or configuration, 3 storage or model unreachable/unreadable,
  4 another run holds the output (or the refresh lock), or took it over from this run: nothing committed.

examples:
  mdr sample samples/sample.warc.gz
  mdr run --config sample --input samples/sample.warc.gz --output out/
  mdr run --input s3://bucket/crawl/warc.paths.gz --output s3://bucket/runs/2026-11 --master spark://host:7077
  mdr stage extract --input samples/ --output out/extract
  mdr status out/
  mdr report out/
  mdr explain out/ https://example.org/page.html
  mdr export out/ --output out-jsonl/
  mdr submit --target k8s --input s3://bucket/crawl/warc.paths.gz --output s3://bucket/runs/r1 --dry-run
  mdr refresh --state s3://bucket/cc-refresh --follow CC-NEWS --budget 200
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "--preset", dest="preset", default=None,
                   help="preset name (configs/<name>.yaml) or a YAML file; default: refinedweb")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set extract.langid.languages=[en,de]")
    p.add_argument("--master", default=None, help="Spark master URL (default: spark.master, local[*])")
    p.add_argument("--ray-address", default=None, help="Ray cluster address for the quality stage (default: local Ray)")
    p.add_argument("--force", action="store_true", help="re-run stages even when their manifest is already committed")
    p.add_argument("--verbose", action="store_true",
                   help="show the engines' own logs (Spark's log4j, Ray's start-up and worker lines, their Python "
                        "warnings); by default only mdr's progress lines and errors are printed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdr", description="MacroData Refinement: Common Crawl WARC -> clean, deduplicated pretraining text "
                                "(RefinedWeb-style) on Spark and Ray.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mdr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run the configured stages in order under one output root",
                       description="Run run.stages in order; each stage reads the previous stage's dataset and writes "
                                   "<output>/<stage>/. Committed stages with the same config and input are skipped.")
    p.add_argument("--input", default=None, help="WARC file, folder/prefix of WARCs, or warc.paths(.gz) listing")
    p.add_argument("--output", default=None, help="output root (file path or s3://bucket/prefix); default: run.output")
    p.add_argument("--stages", default=None, help="comma-separated stages to run instead of run.stages")
    p.add_argument("--retry-failed", action="store_true",
                   help="a stage committed with failed inputs (see `mdr status`) runs just those files again, once "
                        "fixed, and commits them with its other tasks' results")
    _common(p)

    p = sub.add_parser("stage", help="run one stage from an input dataset/WARCs to an output dataset",
                       description="Run a single stage. Input: WARCs for extract; a committed stage output or an "
                                   "external Parquet/JSONL(.gz) dataset with a text column for the others.")
    p.add_argument("name", help="stage name (extract, ...)")
    p.add_argument("--input", required=True, help="input URI")
    p.add_argument("--output", required=True, help="output dataset URI")
    p.add_argument("--retry-failed", action="store_true",
                   help="a stage committed with failed inputs (see `mdr status`) runs just those files again, once "
                        "fixed, and commits them with its other tasks' results")
    _common(p)

    p = sub.add_parser("status", help="show each stage's state and counts under an output root")
    p.add_argument("root", help="output root of a run")
    p.add_argument("--config", "--preset", dest="preset", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)

    p = sub.add_parser("report", help="write report.html (charts) and report.json for a run, from its manifests",
                       description="Write <root>/report.html (self-contained, plotly charts) and report.json, and "
                                   "refresh the dataset card <root>/README.md. Reads only the stage manifests.")
    p.add_argument("root", help="output root of a run")
    p.add_argument("--config", "--preset", dest="preset", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)

    p = sub.add_parser("explain", help="which stage kept or removed a document, why, with the scores",
                       description="Trace a document (by id, or every capture of a URL) through the committed "
                                   "stages: kept or removed, the reason, the scores and the limits they were held "
                                   "to; for duplicates, the kept copy and the two texts' similarity. Exit 1 when "
                                   "no stage has it.")
    p.add_argument("root", help="output root of a run")
    p.add_argument("key", help="document id or URL")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument("--config", "--preset", dest="preset", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)

    p = sub.add_parser("export", help="write a stage's documents as JSONL.gz shards (dolma/datatrove layout)",
                       description="Write OUTPUT/documents/NNNNN.jsonl.gz (one shard per part; id, text, source, "
                                   "added, created, metadata) and OUTPUT/_export.json.")
    p.add_argument("root", help="output root of a run")
    p.add_argument("--output", required=True, help="where to write the shards (path or s3:// URI)")
    p.add_argument("--stage", default=None, help="stage to export (default: the last committed one)")
    p.add_argument("--source", default="mdr", help="value of each document's `source` field")
    p.add_argument("--config", "--preset", dest="preset", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)

    p = sub.add_parser("config", help="print the effective configuration, every key with its doc")
    p.add_argument("--config", "--preset", dest="preset", default=None, help="preset name or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("calibrate-filters", help="derive one language's filter thresholds from clean reference text "
                                                 "(FineWeb-2 style) and print its filter.languages entry as YAML")
    p.add_argument("--config", "--preset", dest="preset", default=None, help="preset name or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--lang", required=True, help="ISO 639-1 code, as language ID labels documents (de, zh, ...)")
    p.add_argument("--reference", action="append", required=True, metavar="URI",
                   help="clean text: a JSONL file (text or article_body), a text file, or a folder of test pages "
                        "with expected.html + expected-metadata.json (repeatable)")
    p.add_argument("--english-reference", action="append", default=None, metavar="URI",
                   help="clean English text for --method ratio (default: the English documents of --reference)")
    p.add_argument("--method", choices=("ratio", "quantile"), default="ratio",
                   help="quantile: the rule's value on the reference at the quantile; ratio (default): the English "
                        "threshold scaled by the language's value / English's value at the quantile")
    p.add_argument("--quantile", type=float, default=None,
                   help="quantile for 'most' rules (1 - it for 'fewest' rules); default 0.5 for ratio, 0.9 for quantile")
    p.add_argument("--window-chars", type=int, default=1500, help="reference documents are cut into windows this long")
    p.add_argument("--min-windows", type=int, default=20,
                   help="refuse a reference of fewer windows than this (default 20: a quantile of a handful of "
                        "windows describes those documents, not the language); lower it to accept a thin reference")

    p = sub.add_parser("scurve", help="print the fuzzy-dedup S-curve: the chance that a pair of documents at Jaccard "
                                      "similarity J shares a MinHash band, and the 50%% point, for the configured "
                                      "dedup_fuzzy preset (e.g. --config fineweb, or --set dedup_fuzzy.bands=...)")
    p.add_argument("--config", "--preset", dest="preset", default=None, help="preset name or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--jaccard", type=float, nargs="+", help="similarities to print (default: 0.3 to 1.0)")
    p.add_argument("--tokens-per-doc", type=int, default=1000,
                   help="tokens per document assumed for the expected false substring matches (default 1000)")

    p = sub.add_parser("sample", help="write the bundled sample WARC (generated, deterministic) and a small "
                                      "UT1-format blocklist beside it, for local mode")
    p.add_argument("output", nargs="?", default="samples/sample.warc.gz", help="where to write it")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("train-quality", help="train a quality classifier (fastText, DCLM-style) and write its model card",
                       description="Train on positive and negative documents (dataset URIs: committed stage outputs, "
                                   "Parquet, JSONL; or .txt files with one document a line), hold out a split by "
                                   "group, print precision/recall/F1 and the keep rate at the threshold, and write "
                                   "the model (.ftz: quantized) with <model>.card.md/.card.json beside it.")
    p.add_argument("--positive", action="append", required=True, metavar="URI", help="high-quality documents (repeatable)")
    p.add_argument("--negative", action="append", required=True, metavar="URI", help="low-quality documents (repeatable)")
    p.add_argument("--output", required=True, help="model URI (.ftz quantized, .bin full; .json head for --backend embedding)")
    p.add_argument("--backend", choices=["fasttext", "embedding"], default="fasttext")
    p.add_argument("--holdout", type=float, default=0.2, help="share of groups held out for scoring (default 0.2)")
    p.add_argument("--threshold", type=float, default=None, help="threshold to score at (default: quality.threshold)")
    p.add_argument("--group-column", default=None, help="column naming each document's group (held out together)")
    p.add_argument("--positive-label", default="hq")
    p.add_argument("--negative-label", default="cc")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epoch", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--word-ngrams", type=int, default=2)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--bucket", type=int, default=500_000)
    p.add_argument("--cutoff", type=int, default=50_000, help="words+ngrams kept by quantization")
    p.add_argument("--keep-case", action="store_true", help="do not lowercase (as DCLM's fasttext-oh-eli5)")
    p.add_argument("--notes", default=None, help="Markdown file appended to the model card (how the data were made)")
    p.add_argument("--config", "--preset", dest="preset", default=None, help="preset or YAML (storage settings)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("submit", help="run the pipeline on a cluster: spark-submit per stage, or Kubernetes operators",
                       description="Run run.stages on a cluster, one stage at a time: submit it, wait until its "
                                   "manifest is committed in object storage, then start the next. Stages already "
                                   "committed with the same config and input are skipped, so re-submitting resumes "
                                   "a failed run. Credentials never travel: the cluster provides them (Kubernetes "
                                   "secret via cluster.credentials_secret, IRSA, workload identity, instance roles).")
    p.add_argument("--target", choices=["spark-submit", "k8s"], required=True,
                   help="spark-submit: a spark-submit command per Spark stage (any master); k8s: a SparkApplication "
                        "per Spark stage and a RayJob for quality, applied with the Kubernetes API")
    p.add_argument("--input", default=None, help="input of the first stage (default: run.input)")
    p.add_argument("--output", default=None, help="output root, an object-storage URI (default: run.output)")
    p.add_argument("--stages", default=None, help="comma-separated stages to run instead of run.stages")
    p.add_argument("--dry-run", action="store_true", help="print what would be submitted (commands or manifests)")
    p.add_argument("--run-name", default=None, help="names the cluster resources (default: mdr-<hash of the root>)")
    g = p.add_argument_group("spark-submit target")
    g.add_argument("--deploy-mode", choices=["client", "cluster"], default="client")
    g.add_argument("--package", choices=["archive", "image"], default="archive",
                   help="archive: ship this code with --archives; image: it is in cluster.spark_image (k8s:// masters)")
    g.add_argument("--archives", action="append", default=[], metavar="URI#ALIAS",
                   help="more archives, e.g. a packed environment: --archives env.tar.gz#env --python ./env/bin/python")
    g.add_argument("--python", default=None, help="Python of the executors (spark.pyspark.python)")
    g.add_argument("--driver-python", default=None, help="Python of the driver in client mode")
    g.add_argument("--spark-submit", default=None, help="spark-submit to run (default: $SPARK_HOME's, else pyspark's)")
    g.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark setting (repeatable)")
    g.add_argument("--staging-dir", default=None, help="where the shipped config and code archive are written")
    g = p.add_argument_group("k8s target")
    g.add_argument("--namespace", default=None, help="namespace (default: cluster.namespace)")
    g.add_argument("--spark-image", default=None, help="image of the Spark stages (default: cluster.spark_image)")
    g.add_argument("--ray-image", default=None, help="image of the quality stage (default: cluster.ray_image)")
    g.add_argument("--context", default=None, help="kubeconfig context (default: the current one, or in-cluster)")
    g.add_argument("--templates", type=Path, default=None, help="folder of the stage templates (default: k8s/stages)")
    _common(p)
    p = sub.add_parser("refresh", help="nightly: process the crawl files not processed yet, publish a new release",
                       description="One night of the incremental pipeline: take the lock in the state root, list\n"
                                   "the followed crawls, take the next files not processed yet (up to the budget; an\n"
                                   "interrupted night is resumed first), run run.stages on them with dedup against\n"
                                   "every earlier release (URL, text hash, MinHash bands), publish releases/<run id>/\n"
                                   "and list it in releases/_index.json, then record each file as done or failed in\n"
                                   "the ledger (failed files are retried on later nights, up to refresh.max_attempts).\n"
                                   "A night with nothing new exits at once. `mdr config` documents the refresh.* keys.\n"
                                   "Exit codes: 0 done (failed files are in the ledger), 1 a stage failed (the next\n"
                                   "night resumes), 2 configuration, 3 storage, 4 another refresh holds the lock.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  mdr refresh --state s3://bucket/cc --follow CC-NEWS --budget 200\n"
                              "  mdr refresh --state s3://bucket/cc --follow CC-MAIN-2026-40,latest --target k8s "
                              "--config my-run.yaml\n"
                              "  mdr refresh --state s3://bucket/cc --status\n"
                              "  mdr refresh --state s3://bucket/cc --source https://mirror.example.org/cc/ "
                              "--set 'storage.http_base_urls=[https://mirror.example.org/cc/]' --dry-run")
    p.add_argument("--source", default=None, help="base URL of the crawl data: https://data.commoncrawl.org/ "
                                                  "(default, refresh.source), an HTTP(S) mirror, or s3://bucket/prefix")
    p.add_argument("--follow", "--crawls", dest="follow", default=None, metavar="LIST",
                   help="comma-separated: crawl ids (CC-MAIN-2026-40), latest, CC-NEWS/YYYY/MM, CC-NEWS "
                        "(this month and last); default: refresh.follow")
    p.add_argument("--state", default=None, help="state root: ledger, lock, indexes, releases/ (refresh.state)")
    p.add_argument("--budget", type=int, default=None, help="most WARC files this night takes (refresh.budget)")
    p.add_argument("--target", choices=["local", "k8s"], default="local",
                   help="local: stages run here (Spark --master); k8s: each stage is submitted as `mdr submit "
                        "--target k8s` does (the CronJob in k8s/refresh/)")
    p.add_argument("--dry-run", action="store_true", help="list what the next night would take; take no lock, write nothing")
    p.add_argument("--status", action="store_true", help="print the ledger's counts, failed and given-up files, the "
                                                         "lock and the latest releases")
    _common(p)
    return parser


def _load(args):
    from pipeline.core.config import load_config
    return load_config(args.preset, args.overrides)


def cmd_run(args) -> int:
    from pipeline.run.runner import run_pipeline
    overrides = list(args.overrides)
    if args.stages:
        overrides.append(f"run.stages=[{args.stages}]")
    if args.ray_address:
        overrides.append(f"ray.address={args.ray_address}")
    args.overrides = overrides
    cfg = _load(args)
    manifests = run_pipeline(cfg, input_uri=args.input, output_root=args.output, force=args.force,
                             retry_failed=args.retry_failed, master=args.master)
    root = args.output or cfg.run.output
    last = manifests[-1] if manifests else None
    if last:
        from pipeline.reports.report import records_note
        first = manifests[0]
        start = records_note(first["stage"], first) or f"{first['counts']['in']:,} documents"
        print(f"funnel: {start} -> " + " -> ".join(f"{m['counts']['kept']:,} after {m['stage']}" for m in manifests))
        print(f"done: {last['rows']:,} documents in {root}/{last['stage']} (see `mdr status {root}`)")
        from pipeline.core.storage import Storage, join
        store = Storage(cfg.storage)
        for name, what in (("report.html", "report"), ("README.md", "dataset card")):
            if store.exists(join(root, name)):
                print(f"{what}: {join(root, name)}")
    return 0


def cmd_stage(args) -> int:
    from pipeline.run.runner import run_stage
    if args.ray_address:
        args.overrides = [*args.overrides, f"ray.address={args.ray_address}"]
    cfg = _load(args)
    run_stage(cfg, args.name, args.input, args.output, force=args.force, retry_failed=args.retry_failed,
              master=args.master)
    return 0


def cmd_status(args) -> int:
    from pipeline.reports.report import print_status
    return print_status(args.root, _load(args))


def cmd_report(args) -> int:
    from pipeline.reports.card import write_card
    from pipeline.reports.report import write_report
    from pipeline.core.storage import Storage
    store = Storage(_load(args).storage)
    html_uri, json_uri = write_report(store, args.root)
    print(f"report: {html_uri}\nnumbers: {json_uri}\ndataset card: {write_card(store, args.root)}")
    return 0


def cmd_explain(args) -> int:
    import json
    from pipeline.reports.explain import explain, print_explanation
    from pipeline.core.storage import Storage
    result = explain(Storage(_load(args).storage), args.root, args.key)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return 0 if result["documents"] else 1
    return print_explanation(result)


def cmd_export(args) -> int:
    from pipeline.reports.export import export_jsonl
    from pipeline.core.storage import Storage
    store = Storage(_load(args).storage)
    store.check_writable(args.output)
    summary = export_jsonl(store, args.root, args.output, stage=args.stage, source=args.source)
    print(f"exported {summary['rows']:,} documents of {summary['stage']} in {len(summary['shards'])} shards to "
          f"{args.output}/documents/")
    return 0


def cmd_refresh(args) -> int:
    from pipeline.core.lease import LeaseHeld, LeaseLost
    from pipeline.refresh.nightly import dry_run, refresh, status
    keys = {"source": "refresh.source", "state": "refresh.state", "budget": "refresh.budget"}
    args.overrides = [*args.overrides, *(f"{k}={getattr(args, a)}" for a, k in keys.items()
                                         if getattr(args, a) is not None)]
    if args.follow:
        args.overrides.append(f"refresh.follow=[{args.follow}]")
    if args.ray_address:
        args.overrides.append(f"ray.address={args.ray_address}")
    cfg = _load(args)
    if args.status:
        return status(cfg)
    if args.dry_run:
        dry_run(cfg)
        return 0
    try:
        refresh(cfg, target=args.target, master=args.master, force=args.force)
    except (LeaseHeld, LeaseLost) as e:  # another refresh holds the lock, or took it over from this one
        print(f"mdr refresh: {e}", file=sys.stderr)
        return 4
    return 0


def cmd_submit(args) -> int:
    from pipeline.cluster.submit import cli_submit
    return cli_submit(args)


def cmd_config(args) -> int:
    from pipeline.core.config import to_yaml
    sys.stdout.write(to_yaml(_load(args)))
    return 0


def cmd_calibrate_filters(args) -> int:
    from pipeline.calibration.thresholds import calibrate
    from pipeline.core.config import ConfigError
    from pipeline.core.storage import Storage
    if args.quantile is not None and not 0.0 < args.quantile < 1.0:
        raise ConfigError(f"--quantile: {args.quantile} must be between 0 and 1")
    cfg = _load(args)
    try:
        cal = calibrate(Storage(cfg.storage), cfg.filter, args.lang, args.reference, args.method, args.quantile,
                        args.english_reference, args.window_chars, args.min_windows)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    sys.stdout.write("filter:\n  languages:\n" + cal.yaml())
    return 0


def cmd_scurve(args) -> int:
    from pipeline.reports.hash_widths import format_false_merges
    from udfs.minhash import format_scurve
    cfg = _load(args)
    print(format_scurve(cfg.dedup_fuzzy.params(), cfg.dedup_fuzzy.preset, args.jaccard))
    print()
    print(format_false_merges(cfg, args.tokens_per_doc))
    return 0


def cmd_sample(args) -> int:
    from pipeline.sample.generate import write_sample_blocklist, write_sample_warc
    from pipeline.core.storage import Storage, join
    folder = args.output.rsplit("/", 1)[0] if "/" in args.output else "."
    Storage().check_writable(folder)
    summary = write_sample_warc(args.output, seed=args.seed)
    blocklist = join(folder, "blocklist")
    lists = write_sample_blocklist(blocklist, summary)
    print(f"wrote {args.output}: {summary['bytes']:,} bytes, {summary['captures']} captures, "
          f"languages {summary['languages']}")
    print(f"wrote {blocklist}/ (UT1 format: {', '.join(f'{k} {len(v)} domains' for k, v in lists.items())}); "
          f"the `sample` preset uses it: mdr run --config sample --input {args.output} --output out")
    return 0


def cmd_train_quality(args) -> int:
    from pathlib import Path

    from pipeline.quality_training.train import TrainParams, print_report, train
    from pipeline.core.storage import Storage
    from pipeline.core.config import ConfigError
    cfg = _load(args)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold}: out of range; allowed: [0.0, 1.0]")
    if not 0.0 < args.holdout < 1.0:
        raise ConfigError(f"--holdout {args.holdout}: out of range; allowed: a share strictly between 0 and 1")
    for flag in ("epoch", "dim", "word_ngrams", "bucket", "cutoff"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be at least 1")
    if args.lr <= 0:
        raise ConfigError(f"--lr {args.lr}: must be positive")
    ext = args.output.rsplit(".", 1)[-1].lower()
    out_folder = args.output.rsplit("/", 1)[0] if "/" in args.output else "."
    Storage(cfg.storage).check_writable(out_folder)  # before reading and training, not after
    p = TrainParams(backend=args.backend, positive_label=args.positive_label, negative_label=args.negative_label,
                    holdout=args.holdout, threshold=cfg.quality.threshold if args.threshold is None else args.threshold,
                    seed=args.seed, lowercase=not args.keep_case, epoch=args.epoch, lr=args.lr, dim=args.dim,
                    word_ngrams=args.word_ngrams, min_count=args.min_count, bucket=args.bucket, cutoff=args.cutoff,
                    quantize=ext == "ftz", group_column=args.group_column)
    try:
        notes = Path(args.notes).read_text() if args.notes else ""
    except OSError as e:
        raise ConfigError(f"--notes {args.notes}: cannot read it ({e.strerror})") from None
    try:
        rep = train(Storage(cfg.storage), args.positive, args.negative, args.output, p, notes)
    except ValueError as e:
        print(f"mdr train-quality: {e}", file=sys.stderr)
        return 2
    print_report(args.output, rep)
    return 0


COMMANDS = {"run": cmd_run, "stage": cmd_stage, "status": cmd_status, "config": cmd_config, "sample": cmd_sample,
            "train-quality": cmd_train_quality, "report": cmd_report, "explain": cmd_explain, "export": cmd_export,
            "submit": cmd_submit, "refresh": cmd_refresh, "scurve": cmd_scurve,
            "calibrate-filters": cmd_calibrate_filters}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from pipeline.core.config import ConfigError
    from pipeline.core.dataset import ConservationError, ManifestConflict
    from pipeline.core.lease import LeaseHeld, LeaseLost
    from pipeline.core.stage import StageFailed
    from pipeline.core.storage import StorageError
    from udfs.langid import ModelError
    from pipeline.core.engine_logs import set_verbose
    set_verbose(getattr(args, "verbose", False))
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"mdr: configuration error: {e}", file=sys.stderr)
        return 2
    except (StorageError, ModelError) as e:
        print(f"mdr: {e}", file=sys.stderr)
        return 3
    except (StageFailed, ConservationError) as e:
        print(f"mdr: {e}", file=sys.stderr)
        return 1
    except (LeaseHeld, LeaseLost, ManifestConflict) as e:
        print(f"mdr: {e}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("mdr: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
