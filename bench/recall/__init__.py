"""LoCoMo recall evaluation of long-term memory.

``python -m bench.recall --data PATH --out DIR [--facts turns|observation|both]``
"""
