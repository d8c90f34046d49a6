"""Entry point of the quality stage on Ray: a committed dataset (or Parquet/JSONL) -> scored, filtered dataset.

    python jobs/quality.py --input s3://bucket/run/dedup_exact --output s3://bucket/run/quality --ray-address auto
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["stage", "quality", *sys.argv[1:]]))
