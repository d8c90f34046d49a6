"""`mdr`: run the pipeline, one stage, or inspect a run.

Exit codes: 0 success; 1 a stage failed (its error is printed); 2 bad usage or configuration
(nothing was processed); 3 storage or model could not be reached/read (nothing was committed).
"""
from __future__ import annotations

import argparse
import sys

from pipeline import __version__

EPILOG = """\
configuration:
  Settings come from a preset (configs/<name>.yaml, default: refinedweb) or a YAML file given with
  --config, then --set key=value overrides (e.g. --set extract.timeout_s=5 --set run.audit=full).
  `mdr config` prints every key with its default and meaning.

exit codes:
  0 success, 1 a stage failed, 2 bad usage or configuration, 3 storage or model unreachable/unreadable.

examples:
  mdr sample samples/sample.warc.gz
  mdr run --input samples/sample.warc.gz --output out/
  mdr run --input s3://bucket/crawl/warc.paths.gz --output s3://bucket/runs/2026-11 --master spark://host:7077
  mdr stage extract --input samples/ --output out/extract
  mdr status out/
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "--preset", dest="preset", default=None,
                   help="preset name (configs/<name>.yaml) or a YAML file; default: refinedweb")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set extract.langid.languages=[en,de]")
    p.add_argument("--master", default=None, help="Spark master URL (default: spark.master, local[*])")
    p.add_argument("--ray-address", default=None, help="Ray cluster address for the quality stage (default: local Ray)")
    p.add_argument("--force", action="store_true", help="re-run stages even when their manifest is already committed")


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
    _common(p)

    p = sub.add_parser("stage", help="run one stage from an input dataset/WARCs to an output dataset",
                       description="Run a single stage. Input: WARCs for extract; a committed stage output or an "
                                   "external Parquet/JSONL(.gz) dataset with a text column for the others.")
    p.add_argument("name", help="stage name (extract, ...)")
    p.add_argument("--input", required=True, help="input URI")
    p.add_argument("--output", required=True, help="output dataset URI")
    _common(p)

    p = sub.add_parser("status", help="show each stage's state and counts under an output root")
    p.add_argument("root", help="output root of a run")
    p.add_argument("--config", "--preset", dest="preset", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)

    p = sub.add_parser("config", help="print the effective configuration, every key with its doc")
    p.add_argument("--config", "--preset", dest="preset", default=None, help="preset name or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("sample", help="write the bundled sample WARC (generated, deterministic) for local mode")
    p.add_argument("output", nargs="?", default="samples/sample.warc.gz", help="where to write it")
    p.add_argument("--seed", type=int, default=0)
    return parser


def _load(args):
    from pipeline.config import load_config
    return load_config(args.preset, args.overrides)


def cmd_run(args) -> int:
    from pipeline.runner import run_pipeline
    overrides = list(args.overrides)
    if args.stages:
        overrides.append(f"run.stages=[{args.stages}]")
    if args.ray_address:
        overrides.append(f"ray.address={args.ray_address}")
    args.overrides = overrides
    cfg = _load(args)
    manifests = run_pipeline(cfg, input_uri=args.input, output_root=args.output, force=args.force,
                             master=args.master)
    root = args.output or cfg.run.output
    last = manifests[-1] if manifests else None
    if last:
        print(f"done: {last['rows']:,} documents in {root}/{last['stage']} (see `mdr status {root}`)")
    return 0


def cmd_stage(args) -> int:
    from pipeline.runner import run_stage
    cfg = _load(args)
    run_stage(cfg, args.name, args.input, args.output, force=args.force, master=args.master)
    return 0


def cmd_status(args) -> int:
    from pipeline.report import print_status
    return print_status(args.root, _load(args))


def cmd_config(args) -> int:
    from pipeline.config import to_yaml
    sys.stdout.write(to_yaml(_load(args)))
    return 0


def cmd_sample(args) -> int:
    from pipeline.sample import write_sample_warc
    summary = write_sample_warc(args.output, seed=args.seed)
    print(f"wrote {args.output}: {summary}")
    return 0


COMMANDS = {"run": cmd_run, "stage": cmd_stage, "status": cmd_status, "config": cmd_config, "sample": cmd_sample}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from pipeline.config import ConfigError
    from pipeline.dataset import ConservationError
    from pipeline.runner import StageFailed
    from pipeline.storage import StorageError
    from udfs.langid import ModelError
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
    except KeyboardInterrupt:
        print("mdr: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
