"""spark-submit entry point of the filter stage: Gopher repetition + quality filters, RefinedWeb line corrections.

    spark-submit jobs/filter.py --input s3://bucket/run/extract --output s3://bucket/run/filter \
        --set filter.quality.min_words=100
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["stage", "filter", *sys.argv[1:]]))
