"""Multi-step procedures (failover, failback, drill) as plain Python, run from DAGs, CLI and tests."""
