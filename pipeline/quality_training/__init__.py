"""Train a quality classifier: labelled sets, fastText training."""
