"""mldr: disaster recovery for ML pipelines on AWS, as code.

The library behind the Airflow runbooks and the `mldr` CLI. Read-only probes live in
`mldr.checks`, state changes in `mldr.actions`, multi-step procedures in `mldr.runbooks`
and the local two-region cloud in `mldr.sandbox`.
"""

__version__ = "0.1.0"
