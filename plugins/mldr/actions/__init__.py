"""State-changing actions, each idempotent and small: fencing, write fence, compute,
traffic, replication direction and resync. Runbooks compose them into procedures."""
