"""The characters Mnemo refuses in stored text, checked the same way by gateway and service.

Refused (never stripped): C0 control characters other than tab, line feed and carriage
return (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F), U+007F DEL, C1 control characters
(U+0080-U+009F) and lone surrogates (U+D800-U+DFFF, which are not UTF-8 at all). A NUL
stored in a memory or a message used to break every later turn of its user; refusing them
at the door loses nothing the client did not send on purpose.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ONLY_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_char_problem(value: str, *, surrogates: bool = True) -> str | None:
    """Why ``value`` cannot be stored (the first refused character), or None when it can;
    ``surrogates=False`` leaves lone surrogates to a check of their own."""
    found = (CONTROL_CHARS if surrogates else _ONLY_CONTROL).search(value)
    if found is None:
        return None
    ch = found.group()
    if "\ud800" <= ch <= "\udfff":
        return "is not valid UTF-8 (a lone surrogate)"
    name = "a NUL character" if ch == "\x00" else f"a control character (U+{ord(ch):04X})"
    return f"contains {name} at position {found.start()}"


__all__ = ["CONTROL_CHARS", "control_char_problem"]
