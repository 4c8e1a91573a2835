"""One chat turn: memory before the LLM call, the call, memory after."""
