"""Test support of the memory service: the real server in-process or as a subprocess,
Chroma and RediSearch servers, the loaded embedder (pytest plugin: :mod:`.plugin`)."""
