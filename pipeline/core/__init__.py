"""What stages run on: config, storage, datasets, manifests, stage contract, Spark, Ray."""
