"""keras_prelu: a correct, fast, deployable PReLU for Keras 3 on every backend.

Public API: the `PReLU` layer, the functional op `prelu`, the default slope
`DEFAULT_SLOPE`, and the modules `callbacks` (training diagnostics),
`saving` (checked loading), `migration` (from and to `keras.layers.PReLU`
and `torch.nn.PReLU`) and `export` (ONNX with native `PRelu`). Modules whose
names start with an underscore are internal.

Deprecated: `SlopeMonitor`, `DeadUnitMonitor` and
`exclude_slopes_from_weight_decay`, imported from here as in 0.1.0, still
work but warn; import them from `keras_prelu.callbacks`. They go in 0.4.
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

# Moved in 0.2.0: old name -> the module that defines it now.
_MOVED = {
    "SlopeMonitor": "keras_prelu.callbacks",
    "DeadUnitMonitor": "keras_prelu.callbacks",
    "exclude_slopes_from_weight_decay": "keras_prelu.callbacks",
}


def __getattr__(name: str) -> object:
    return _deprecation.moved_attribute(__name__, name, _MOVED)
