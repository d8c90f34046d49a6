"""spark-submit entry point of the dedup_exact stage: URL, whole-document and exact-substring dedup.

    spark-submit jobs/dedup_exact.py --input s3://bucket/run/filter --output s3://bucket/run/dedup_exact \
        --set dedup_exact.k=50
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["stage", "dedup_exact", *sys.argv[1:]]))
