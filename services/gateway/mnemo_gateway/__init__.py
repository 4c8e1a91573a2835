"""Mnemo chat gateway: chat with memory, Anthropic/OpenAI-compatible endpoints, web page."""
