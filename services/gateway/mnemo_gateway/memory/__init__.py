"""The memory service client: deadlines, status mapping and a circuit breaker."""
