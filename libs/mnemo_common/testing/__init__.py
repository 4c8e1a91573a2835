"""Test support shared by every suite: real servers on free ports and wire-level LLM fakes."""
