"""keras_prelu: a correct, fast, deployable PReLU for Keras 3 on every backend."""

from keras_prelu import callbacks, export, saving
from keras_prelu.callbacks import DeadUnitMonitor
from keras_prelu.callbacks import SlopeMonitor
from keras_prelu.callbacks import exclude_slopes_from_weight_decay
from keras_prelu.layer import PReLU
from keras_prelu.ops import prelu

__version__ = "0.1.0"

__all__ = [
    "PReLU",
    "prelu",
    "callbacks",
    "export",
    "saving",
    "SlopeMonitor",
    "DeadUnitMonitor",
    "exclude_slopes_from_weight_decay",
    "__version__",
]
