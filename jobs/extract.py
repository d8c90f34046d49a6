"""spark-submit entry point of the extract stage: WARCs -> documents.

    spark-submit jobs/extract.py --input s3://bucket/warc.paths.gz --output s3://bucket/run/extract
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["stage", "extract", *sys.argv[1:]]))
