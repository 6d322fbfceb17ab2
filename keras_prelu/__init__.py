"""keras_prelu: a correct, fast, deployable PReLU for Keras 3 on every backend."""

from keras_prelu import export, saving
from keras_prelu.layer import PReLU
from keras_prelu.ops import prelu

__version__ = "0.1.0"

__all__ = ["PReLU", "prelu", "export", "saving", "__version__"]
