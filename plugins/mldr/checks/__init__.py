"""Read-only probes: they observe the DR topology and never change it."""
