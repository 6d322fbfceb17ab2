"""keras_prelu: a correct, fast, deployable PReLU for Keras 3 on every backend.

Public API: the `PReLU` layer, the functional op `prelu`, the default slope
`DEFAULT_SLOPE`, and the modules `callbacks` (training diagnostics),
`saving` (checked loading), `migration` (from and to `keras.layers.PReLU`
and `torch.nn.PReLU`) and `export` (ONNX with native `PRelu`). Modules whose
names start with an underscore are internal.
"""

from keras_prelu import callbacks
from keras_prelu import export
from keras_prelu import migration
from keras_prelu import saving
from keras_prelu._layer import DEFAULT_SLOPE
from keras_prelu._layer import PReLU
from keras_prelu._ops import prelu

__version__ = "0.2.0"

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
