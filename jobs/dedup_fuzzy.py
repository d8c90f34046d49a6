"""spark-submit entry point of the dedup_fuzzy stage: MinHash LSH near-duplicate removal.

    spark-submit jobs/dedup_fuzzy.py --input s3://bucket/run/filter --output s3://bucket/run/dedup_fuzzy \
        --set dedup_fuzzy.preset=fineweb --set dedup_fuzzy.keep=earliest
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["stage", "dedup_fuzzy", *sys.argv[1:]]))
