"""Code shared by every Mnemo process (never deployed on its own)."""
