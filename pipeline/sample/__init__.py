"""The synthetic sample WARC (`mdr sample`)."""
