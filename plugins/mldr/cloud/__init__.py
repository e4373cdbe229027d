"""What the runbooks ask of a cloud, as small typed protocols: object store, traffic, compute
pool, control store, metrics and alerts. `mldr.cloud.aws` implements them; nothing outside
this package (but the sandbox and the example workload in `mldr.ml`) makes a cloud client."""
