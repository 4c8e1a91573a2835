"""Mnemo memory service: the gRPC server and the extraction worker (same package)."""
