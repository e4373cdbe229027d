"""The example ML workload mldr protects: the model registry's S3 layout and the training pipeline.

`mldr.ml.registry` is the storage contract (what lives at which key, and how it is verified);
`mldr.ml.train` produces what the registry stores, step by step, so a DAG can run each step as a task.
"""
