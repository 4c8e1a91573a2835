"""Fixtures (filled in by the owning component)."""
