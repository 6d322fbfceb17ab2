"""Names that moved keep working for a while, with a warning naming their new home.

A public module that lost a documented name defines

    def __getattr__(name):
        return _deprecation.moved_attribute(__name__, name, {"old_name": "new.module"})

as SciPy does for its moved submodules. The old name resolves to the very same
object, found by importing the new module only when the old name is used (so
two modules can point at each other without an import cycle). Such names are
not in the module's `__all__`, nor in `dir()`, so tab completion and
`from module import *` offer only the new places.
"""

import importlib
import warnings
from typing import Any

# The release that removes the names deprecated so far.
REMOVAL = "0.4"


def moved_attribute(module: str, name: str, moves: dict[str, str]) -> Any:
    """Returns `name` from its new module in `moves`, with a `DeprecationWarning`.

    Args:
        module: str. The module the name is looked up on (its `__name__`).
        name: str. The attribute asked for.
        moves: dict. Old name to the module that now defines it.

    Raises:
        AttributeError: if `name` is not a moved name, as for any missing
            module attribute.
    """
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
