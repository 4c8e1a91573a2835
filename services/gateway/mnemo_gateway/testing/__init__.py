"""Test support of the chat gateway: a real gateway over HTTP (pytest plugin: :mod:`.plugin`)."""
