"""Per-document logic as pure functions on plain values, plus thin adapters that run them in Spark."""
