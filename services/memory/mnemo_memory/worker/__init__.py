"""The extraction worker: consumes jobs from the Redis Stream (``mnemo-memory worker``)."""
