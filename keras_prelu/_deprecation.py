"""Moved names keep working for a while, with a warning naming their new home:
a module's `__getattr__` returns `moved_attribute(__name__, name, moves)`. The
new module is imported only on use (no import cycle).
"""

import importlib
import warnings
from typing import Any

# The release that removes the names deprecated so far.
REMOVAL = "0.4"


def moved_attribute(module: str, name: str, moves: dict[str, str]) -> Any:
    """`name` from its new module in `moves` (old name to module), with a
    `DeprecationWarning`; an `AttributeError` if it did not move."""
    if name not in moves:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    new_module = moves[name]
    warnings.warn(
        f"`{module}.{name}` is deprecated and will be removed in keras_prelu {REMOVAL}. "
        f"Please import `{name}` from `{new_module}` instead: "
        f"`from {new_module} import {name}`.",
        DeprecationWarning,
        # 1 is this function, 2 the module's __getattr__, 3 the caller's line.
        stacklevel=3,
    )
    return getattr(importlib.import_module(new_module), name)
