"""keras_prelu: a correct, fast, deployable PReLU for Keras 3 on every backend.

The `PReLU` layer, the op `prelu`, `DEFAULT_SLOPE`, and the modules
`callbacks`, `saving`, `migration` and `export`; `_` modules are internal.
"""

from keras_prelu import _deprecation
from keras_prelu import callbacks
from keras_prelu import export
from keras_prelu import migration
from keras_prelu import saving
from keras_prelu._layer import DEFAULT_SLOPE
from keras_prelu._layer import PReLU
from keras_prelu._ops import prelu

__version__ = "0.3.0"

__all__ = [
    "DEFAULT_SLOPE",
    "PReLU",
    "prelu",
    "callbacks",
    "export",
    "migration",
    "saving",
    "__version__",
]

# Moved to callbacks in 0.2.0; they warn, and go in 0.4.
_MOVED = dict.fromkeys(
    ("SlopeMonitor", "DeadUnitMonitor", "exclude_slopes_from_weight_decay"), "keras_prelu.callbacks"
)


def __getattr__(name: str) -> object:
    return _deprecation.moved_attribute(__name__, name, _MOVED)
