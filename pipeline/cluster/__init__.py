"""Submit a run to a cluster: run plans, spark-submit, Kubernetes."""
