"""The functional op `keras_prelu.prelu` (`keras_prelu/_ops.py`): symbolic
and eager calls, broadcasting, refused dtypes, its name. Its numerics are in
test_numerics.py; a model holding the op round trips in test_saving.py."""

import keras
import numpy as np
import pytest

import keras_prelu


def test_functional_op_symbolic_and_eager():
    symbolic = keras_prelu.prelu(keras.Input((None, 3)), keras.ops.ones((3,)))
    assert isinstance(symbolic, keras.KerasTensor) and symbolic.shape == (None, None, 3)
    assert keras_prelu.prelu(keras.Input((2,), dtype="int32"), 0.5).dtype == "float32"
    eager = keras_prelu.prelu(np.array([-4.0, 0.0, 2.0], "float32"), np.float32(0.5))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(eager), [-2.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 3\), alpha.shape=\(4,\)"):
        keras_prelu.prelu(np.ones((2, 3), "float32"), np.ones((4,), "float32"))
    with pytest.raises(ValueError, match="alpha.shape"):
        keras_prelu.prelu(keras.Input((3,)), keras.Input((4,)))


def _complex(shape=(2, 3)):
    return (np.ones(shape) + 1j * np.ones(shape)).astype("complex64")


def test_complex_inputs_and_slopes_are_refused():
    x = np.array([[-1.0, 2.0, -3.0]], "float32")
    with pytest.raises(TypeError, match=r"imaginary part.*Received: x.dtype=complex64"):
        keras_prelu.prelu(_complex(), 0.25)
    with pytest.raises(TypeError, match=r"Received: inputs.dtype=complex64"):
        keras_prelu.PReLU()(_complex())
    with pytest.raises(TypeError, match=r"Received: inputs.dtype=complex64"):
        keras_prelu.PReLU()(_complex(), training=True)
    with pytest.raises(TypeError, match=r"Received: alpha.dtype=complex"):
        keras_prelu.prelu(x, 0.5j)
    with pytest.raises(TypeError, match=r"Received: alpha.dtype=complex64"):
        keras_prelu.prelu(x, _complex((3,)))


def test_complex_symbolic_inputs_and_slopes_are_refused():
    with pytest.raises(TypeError, match=r"Received: inputs.dtype=complex64"):
        keras_prelu.PReLU()(keras.Input((3,), dtype="complex64"))
    with pytest.raises(TypeError, match=r"Received: x.dtype=complex64"):
        keras_prelu.prelu(keras.Input((3,), dtype="complex64"), 0.25)
    with pytest.raises(TypeError, match=r"Received: alpha.dtype=complex128"):
        keras_prelu.prelu(keras.Input((3,)), 0.5j)
    with pytest.raises(TypeError, match=r"Received: alpha.dtype=complex64"):
        keras_prelu.prelu(keras.Input((3,)), keras.Input((3,), dtype="complex64"))


def test_op_and_layer_names_do_not_share_a_counter():
    first = keras_prelu.PReLU().name
    op_output = keras_prelu.prelu(keras.Input((3,)), 0.1)
    second = keras_prelu.PReLU().name
    index = int(first.rpartition("_")[2]) if first != "p_re_lu" else 0
    assert second == f"p_re_lu_{index + 1}"
    assert op_output._keras_history[0].name.startswith("prelu")
