"""What `keras_prelu.saving` refuses: damaged and hostile files. It refuses
them fast, in bounded memory, with a `ValueError` naming the file; it never
half-loads a model and never changes the file. (What it loads is in
test_saving.py.)

The bombs are built on the fly: a few MB on disk that declare GiBs.
"""

import json
import re
import resource
import struct
import time
import tracemalloc
import types
import zipfile
import zlib

import h5py
import keras
import numpy as np
import pytest

import keras_prelu
from keras_prelu import saving
from tests.helpers import file_state
from tests.helpers import prelu_entry
from tests.helpers import rewrite_config

MIB = 1 << 20
GIB = 1 << 30
# Generous bounds for a refusal that reads only the zip's directory and the
# file's headers, on a loaded 2-core CI machine.
SECONDS = 3.0
PYTHON_PEAK_BYTES = 32 * MIB


# Building hostile files -------------------------------------------------------------


def _deflated_zeros(mebibytes):
    """A raw DEFLATE stream of `mebibytes` MiB of zeros, about 1 KB per MiB.

    One compressed MiB, flushed so that it stands alone, repeated: no GiB is
    ever compressed (or held) to build it.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mebibytes + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _write_zip(path, members):
    """Writes a zip whose members declare whatever size they are given.

    `members`: (name, stored bytes, declared uncompressed size, method)
    tuples; method 8 is DEFLATE, 0 stored. CRCs are those of the stored bytes
    for stored members and 0 (wrong) for the bombs, which no check may inflate.
    """
    body, directory = bytearray(), bytearray()
    for name, data, declared, method in members:
        offset, encoded = len(body), name.encode()
        crc = zlib.crc32(data) if method == 0 else 0
        zip64 = declared >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, declared, len(data)) if zip64 else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (len(data), declared)
        body += struct.pack("<IHHHHHI", 0x04034B50, 45, 0, method, 0, 0x21, crc) + struct.pack(
            "<IIHH", *sizes, len(encoded), len(extra)
        )
        body += encoded + extra + data
        directory += struct.pack(
            "<IHHHHHHI", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc
        ) + struct.pack("<IIHHHHHII", *sizes, len(encoded), len(extra), 0, 0, 0, 0, offset)
        directory += encoded + extra
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    path.write_bytes(bytes(body + directory + end))
    return path


def _valid_members(saved):
    """The members of a real `.keras` file, as `_write_zip` tuples."""
    with zipfile.ZipFile(saved) as archive:
        return [
            (info.filename, archive.read(info.filename), info.file_size, 0)
            for info in archive.infolist()
        ]


def _small_model(layout="channelwise"):
    data_format = {"data_format": "channels_last"} if layout == "channelwise" else {}
    return keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Conv2D(3, 1, name="conv", data_format="channels_last"),
            keras_prelu.PReLU(layout=layout, name="act", **data_format),
        ]
    )


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.keras"
    _small_model().save(path)
    return path


def _refused_fast(load, path, match):
    """Runs `load(path)`; it must raise a ValueError naming `path`, fast and lean."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match) as info:
            load(path)
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    assert f"Received: filepath={path}" in str(info.value)
    assert seconds < SECONDS, f"took {seconds:.1f} s"
    assert peak < PYTHON_PEAK_BYTES, f"Python peak {peak / MIB:.0f} MiB"
    assert rss_growth < 256 * MIB, f"peak RSS grew by {rss_growth / MIB:.0f} MiB"
    return info.value


def _file_error(path):
    return re.escape(f"Received: filepath={path}")


# Damaged files ---------------------------------------------------------------------


def test_truncated_file_is_refused_and_left_untouched(saved, tmp_path):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    before = file_state(truncated)
    with pytest.raises(ValueError, match=r"is not a valid \.keras file.*truncated or corrupted"):
        saving.load_model(truncated)
    with pytest.raises(ValueError, match=_file_error(truncated)):
        saving.load_model(truncated)
    assert file_state(truncated) == before


def test_corrupted_member_fails_its_crc_check(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("model.weights.h5")
    name_length, extra_length = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    corrupted = tmp_path / "corrupted.keras"
    corrupted.write_bytes(bytes(data))
    before = file_state(corrupted)
    with pytest.raises(
        ValueError, match=r"'model\.weights\.h5' fails its CRC check.*Received: filepath="
    ):
        saving.load_model(corrupted)
    assert file_state(corrupted) == before


@pytest.mark.parametrize(
    "content,match",
    [(b"not a zip archive", "not a readable zip archive"), (None, "has no config.json")],
)
def test_other_broken_archives(tmp_path, content, match):
    path = tmp_path / "broken.keras"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", "{}")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        saving.load_model(path)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        saving.load_model(tmp_path / "absent.keras")
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"ending in one of \('\.keras',\)"):
        saving.load_model(tmp_path / "model.h5")


def test_alpha_of_the_wrong_shape_in_a_keras_file(saved, tmp_path):
    # The config now asks for a (4, 4, 3) full-layout alpha; the stored one is
    # channel-wise, (1, 1, 3).
    bad = tmp_path / "mismatch.keras"
    rewrite_config(
        saved,
        bad,
        lambda config: prelu_entry(config)["config"].update(layout="full", data_format=None),
    )
    before = file_state(bad)
    with pytest.raises(
        ValueError, match=r"(?s)mismatch\.keras'.*name=act.*4, 4, 3.*1, 1, 3"
    ) as info:
        saving.load_model(bad)
    assert re.search(_file_error(bad), str(info.value))
    assert file_state(bad) == before


def test_weights_file_with_another_alpha_shape_loads_nothing(tmp_path):
    path = tmp_path / "channelwise.weights.h5"
    _small_model().save_weights(path)
    before_file = file_state(path)
    target = _small_model(layout="full")  # the same conv, but a (4, 4, 3) alpha
    before = target.get_weights()
    with pytest.raises(
        ValueError, match=r"(?s)channelwise\.weights\.h5' into model.*unchanged.*name=act"
    ):
        saving.load_weights(target, path)
    for got, want in zip(target.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # the conv was not half-loaded
    assert file_state(path) == before_file


# Decompression bombs ----------------------------------------------------------------


def test_config_bomb_over_keras_floor_is_refused_before_inflating(tmp_path):
    # 4.5 GiB of zeros in about 4.7 MB, as config.json: the case Keras 3.15
    # also refuses, which the old checker inflated for seconds first.
    path = _write_zip(
        tmp_path / "bomb.keras", [("config.json", _deflated_zeros(4608), 4608 * MIB, 8)]
    )
    assert path.stat().st_size < 6 * MIB
    before = file_state(path)
    error = _refused_fast(saving.load_model, path, r"Refusing to load .*config\.json.*declares")
    assert "decompression bomb" in str(error)
    assert file_state(path) == before


def test_config_bomb_under_keras_floor_is_refused_too(tmp_path):
    # 1 GiB: below the 4 GiB that Keras 3.15 checks for, over this loader's limits.
    path = _write_zip(
        tmp_path / "bomb.keras", [("config.json", _deflated_zeros(1024), 1024 * MIB, 8)]
    )
    _refused_fast(saving.load_model, path, r"config\.json' declares .*1\.0 GiB")


def test_weights_bomb_is_refused_by_both_loaders(saved, tmp_path):
    members = [m for m in _valid_members(saved) if m[0] != "model.weights.h5"]
    members.append(("model.weights.h5", _deflated_zeros(5120), 5120 * MIB, 8))
    path = _write_zip(tmp_path / "bomb.keras", members)
    _refused_fast(saving.load_model, path, r"model\.weights\.h5' declares .*5\.0 GiB")
    model = _small_model()
    before = model.get_weights()
    _refused_fast(lambda p: saving.load_weights(model, p), path, r"model\.weights\.h5' declares")
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_many_small_bombs_are_refused_by_their_total(tmp_path):
    # Each member stays under the per-member limit; together they declare
    # 40 x 60 MiB in about 2.5 MB.
    members = [(f"assets/{i}", _deflated_zeros(60), 60 * MIB, 8) for i in range(40)]
    path = _write_zip(tmp_path / "many.keras", members)
    _refused_fast(saving.load_model, path, r"40 members declare .* together")


def test_oversized_config_is_refused_before_reading(tmp_path):
    # Stored, not compressed: 100 MiB declared, 2 MiB present.
    path = _write_zip(tmp_path / "big.keras", [("config.json", bytes(2 * MIB), 100 * MIB, 0)])
    _refused_fast(saving.load_model, path, r"config\.json declares .* more than")


def _weights_file(tmp_path, edit):
    """A `.weights.h5` of `_small_model`, with `edit(h5py.File)` applied."""
    path = tmp_path / "model.weights.h5"
    _small_model().save_weights(path)
    with h5py.File(path, "a") as file:
        edit(file)
    return path


def _alpha_dataset(file):
    """The name of the stored PReLU slope: the dataset of shape (1, 1, 3)."""
    names = []
    file.visititems(
        lambda name, item: (
            names.append(name)
            if isinstance(item, h5py.Dataset) and item.shape == (1, 1, 3)
            else None
        )
    )
    (name,) = names
    return name


def _shape_bomb(file):
    # 1 GiB declared, nothing stored (chunked and compressed, never written):
    # below Keras 3.15's own 4 GiB HDF5 check.
    name = _alpha_dataset(file)
    del file[name]
    file.create_dataset(
        name, shape=(1, 1, GIB // 4), dtype="float32", chunks=(1, 1, MIB), compression="gzip"
    )


def _soft_link(file):
    name = _alpha_dataset(file)
    file["elsewhere"] = file[name][()]
    del file[name]
    file[name] = h5py.SoftLink("/elsewhere")


def _external_link(file):
    name = _alpha_dataset(file)
    del file[name]
    file[name] = h5py.ExternalLink("/etc/hostname", "/data")


@pytest.mark.parametrize(
    "edit,match",
    [
        (_shape_bomb, r"HDF5 dataset .* declares shape \(1, 1, 268435456\)"),
        (_soft_link, r"HDF5 weights hold a SoftLink"),
        (_external_link, r"HDF5 weights hold a ExternalLink"),
    ],
)
def test_hostile_weights_file_is_refused_and_nothing_is_loaded(tmp_path, edit, match):
    path = _weights_file(tmp_path, edit)
    model = _small_model()
    before = model.get_weights()
    _refused_fast(lambda p: saving.load_weights(model, p), path, match)
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_hostile_weights_inside_a_keras_file(saved, tmp_path):
    weights = _weights_file(tmp_path, _shape_bomb)
    members = [m for m in _valid_members(saved) if m[0] != "model.weights.h5"]
    data = weights.read_bytes()
    members.append(("model.weights.h5", data, len(data), 0))
    path = _write_zip(tmp_path / "bomb.keras", members)
    _refused_fast(saving.load_model, path, r"model\.weights\.h5' HDF5 dataset .* declares")


def test_npz_shape_bomb_inside_a_keras_file(saved, tmp_path):
    # An .npy header declaring 1 GiB in front of 16 bytes of data.
    header = {"descr": "<f4", "fortran_order": False, "shape": (GIB // 4,)}
    npy = bytearray()
    np.lib.format.write_array_header_1_0(_Appender(npy), header)
    npy += bytes(16)
    npz = tmp_path / "inner.npz"
    _write_zip(npz, [("0.npy", bytes(npy), len(npy), 0)])
    members = [m for m in _valid_members(saved) if m[0] != "model.weights.h5"]
    data = npz.read_bytes()
    members.append(("model.weights.npz", data, len(data), 0))
    path = _write_zip(tmp_path / "npz.keras", members)
    _refused_fast(saving.load_model, path, r"npz array '0\.npy' declares shape \(268435456,\)")


class _Appender:
    def __init__(self, buffer):
        self.buffer = buffer

    def write(self, data):
        self.buffer += data


# Declared shapes --------------------------------------------------------------------


# A declared slope shape the file does not store: refused as any layer's would
# be, once Keras has built the layer and compares the stored weights with it.
# The loader bounds no layer's allocation (the saving module's docstring);
# these shapes are kept small (4 MiB) for that reason.


def test_a_declared_slope_shape_the_file_does_not_store_is_refused(saved, tmp_path):
    def edit(config):
        entry = prelu_entry(config)
        entry["config"].update(layout="full", data_format=None)
        entry["build_config"] = {"input_shape": [None, 1024, 1024]}

    path = rewrite_config(saved, tmp_path / "huge.keras", edit)
    _refused_fast(saving.load_model, path, r"Could not load the model in .*huge.keras")


def test_a_shape_reaching_the_layer_through_the_graph_is_refused(tmp_path):
    # The PReLU stores no build_config, and the functional graph feeds it a
    # (None, 1024, 1024) input.
    inputs = keras.Input((4, 4), name="inputs")
    outputs = keras_prelu.PReLU(name="act")(inputs)
    source = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(source)

    def edit(config):
        text = json.dumps(config["config"]["layers"]).replace("[null, 4, 4]", "[null, 1024, 1024]")
        config["config"]["layers"] = json.loads(text)
        del prelu_entry(config)["build_config"]

    path = rewrite_config(source, tmp_path / "graph.keras", edit)
    _refused_fast(saving.load_model, path, r"Could not load the model in .*graph.keras")


# Damaged configs: always a ValueError naming the file ---------------------------------


def _with_deep_value(source, target, depth, where):
    """`source` with a value nested `depth` lists deep at `where(config)["deep"]`.

    Written as text: Python's json cannot write (or read) it.
    """
    with zipfile.ZipFile(source) as archive:
        config = json.loads(archive.read("config.json"))
    where(config)["deep"] = "DEEP"
    text = json.dumps(config).replace('"DEEP"', "[" * depth + "1" + "]" * depth)
    members = [m for m in _valid_members(source) if m[0] != "config.json"]
    members.append(("config.json", text.encode(), len(text), 0))
    return _write_zip(target, members)


@pytest.mark.parametrize("depth", [900, 2000])
@pytest.mark.parametrize(
    "where",
    [lambda c: prelu_entry(c)["config"], lambda c: c["config"]["layers"][1]["config"]],
    ids=["prelu", "conv"],
)
def test_deeply_nested_config_is_a_value_error_naming_the_file(saved, tmp_path, depth, where):
    # Deep enough to exhaust Python's recursion in json, in the checks or in Keras.
    path = _with_deep_value(saved, tmp_path / "deep.keras", depth, where)
    with pytest.raises(ValueError, match=_file_error(path)):
        saving.load_model(path)


def _config_update(**changes):
    """An edit of the PReLU's config: `changes` replace its arguments."""
    return lambda config: prelu_entry(config)["config"].update(changes)


def _constant(value):
    return {
        "module": "keras.initializers",
        "class_name": "Constant",
        "config": {"value": value},
        "registered_name": None,
    }


@pytest.mark.parametrize(
    "edit,match",
    [
        (_config_update(layout="diagonal"), r"Received: layout='diagonal'"),
        (_config_update(layout="full", data_format=None, shared_axes=[0]), r"batch axis 0"),
        (
            _config_update(layout="full", data_format=None, shared_axes=["h"]),
            r"Received: shared_axes=\['h'\]",
        ),
        (
            _config_update(layout="full", data_format=None, shared_axes=[7]),
            r"axis 7 is out of range",
        ),
        (_config_update(dtype="int32"), r"Received: dtype='int32'"),
        (_config_update(dtype="bool"), r"Received: dtype='bool'"),
        (
            _config_update(alpha_initializer=_constant("abc")),
            r"alpha_initializer.*Constant\(value='abc'\)",
        ),
        (_config_update(alpha_initializer=_constant(float("nan"))), r"alpha_initializer.*finite"),
        (
            lambda c: prelu_entry(c).update(build_config={"input_shape": "abc"}),
            r"Received: input_shape='abc'",
        ),
        (
            lambda c: prelu_entry(c).update(build_config={"input_shape": [None, -4, 3]}),
            r"Received: input_shape=\[None, -4, 3\]",
        ),
    ],
    ids=[
        "layout",
        "batch_axis",
        "axis_name",
        "axis_out_of_range",
        "int_dtype",
        "bool_dtype",
        "text_slope",
        "nan_slope",
        "text_input_shape",
        "negative_input_shape",
    ],
)
def test_bad_prelu_config_is_a_value_error_naming_layer_and_file(saved, tmp_path, edit, match):
    path = rewrite_config(saved, tmp_path / "bad.keras", edit)
    before = file_state(path)
    with pytest.raises(
        ValueError, match=r"keras_prelu\.PReLU layer 'act' in '.*bad\.keras' has an invalid config"
    ) as info:
        saving.load_model(path)
    assert re.search(match, str(info.value))
    assert file_state(path) == before


@pytest.mark.parametrize("text", [b"[]", b"null", b'"model"', b"{" * 5000 + b"}" * 5000])
def test_config_that_is_not_a_model_object(saved, tmp_path, text):
    members = [m for m in _valid_members(saved) if m[0] != "config.json"]
    members.append(("config.json", text, len(text), 0))
    path = _write_zip(tmp_path / "odd.keras", members)
    with pytest.raises(ValueError, match=r"is not a valid \.keras file: its config\.json"):
        saving.load_model(path)


_FUZZ_VALUES = (None, -1, 0, 1e300, "x", [], {}, [None], True)


def _config_paths(node, prefix=()):
    """Every (path, value) of a JSON tree."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield prefix + (key,), value
        yield from _config_paths(value, prefix + (key,))


def test_fuzzed_configs_load_or_raise_a_value_error_naming_the_file(saved, tmp_path):
    with zipfile.ZipFile(saved) as archive:
        original = json.loads(archive.read("config.json"))
    paths = [path for path, _ in _config_paths(original)]
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(24):
        config = json.loads(json.dumps(original))
        path = paths[rng.integers(len(paths))]
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = _FUZZ_VALUES[case % len(_FUZZ_VALUES)]
        target = rewrite_config(
            saved, tmp_path / f"fuzz{case}.keras", lambda c, new=config: c.update(new)
        )
        try:
            saving.load_model(target)
            outcomes["loaded"] += 1
        except ValueError as error:
            assert f"Received: filepath={target}" in str(error), (path, error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


# Errors from Keras's own loading ------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("boom"), RecursionError("deep"), KeyError("k")])
def test_anything_keras_raises_becomes_a_value_error(saved, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(keras.saving, "load_model", fail)
    with pytest.raises(ValueError, match=_file_error(saved)) as info:
        saving.load_model(saved)
    assert info.value.__cause__ is error


@pytest.mark.parametrize("error", [MemoryError(), KeyboardInterrupt()])
def test_memory_error_and_interrupt_pass_through(saved, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(keras.saving, "load_model", fail)
    with pytest.raises(type(error)):
        saving.load_model(saved)


@pytest.mark.parametrize("error", [MemoryError(), KeyboardInterrupt(), RuntimeError("x")])
def test_load_weights_restores_everything_whatever_interrupts_it(tmp_path, monkeypatch, error):
    # Keras itself turns exceptions raised while loading a layer (MemoryError
    # included) into one ValueError; a KeyboardInterrupt passes through.
    source = _small_model()
    for variable in source.weights:
        variable.assign(np.full(variable.shape, 0.5, "float32"))
    source.save_weights(tmp_path / "model.weights.h5")
    model = _small_model()
    before = model.get_weights()
    act = model.get_layer("act")
    original = type(act).load_own_variables

    def load_then_fail(self, store):
        original(self, store)  # the conv before it, and this layer, are loaded
        raise error

    monkeypatch.setattr(type(act), "load_own_variables", load_then_fail)
    expected = (ValueError, type(error)) if isinstance(error, Exception) else type(error)
    with pytest.raises(expected):
        saving.load_weights(model, tmp_path / "model.weights.h5")
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_weights_does_not_need_config_json(saved, tmp_path):
    trained = _small_model()
    for variable in trained.weights:
        variable.assign(np.full(variable.shape, 0.5, "float32"))
    trained.save(saved)
    members = [m for m in _valid_members(saved) if m[0] != "config.json"]
    members.append(("config.json", b"not json", 8, 0))
    path = _write_zip(tmp_path / "weights_only.keras", members)
    model = _small_model()
    saving.load_weights(model, path)
    for got, want in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        saving.load_model(path)


def test_optimizer_of_another_backend_is_mapped_or_refused(saved):
    here = keras.backend.backend()
    other = "jax" if here != "jax" else "torch"
    config = {
        "compile_config": {
            "optimizer": {
                "module": f"keras.src.backend.{other}.optimizers.{other}_adam",
                "class_name": "Adam",
                "registered_name": "Adam",
            }
        }
    }
    assert saving._optimizers_of_other_backends(config) == {"Adam": keras.optimizers.Adam}
    config["compile_config"]["optimizer"]["module"] = f"keras.src.backend.{here}.optimizers"
    assert saving._optimizers_of_other_backends(config) == {}

    # Were the mapping ever to stop working, the loaded model is refused.
    class Foreign:
        pass

    Foreign.__module__ = f"keras.src.backend.{other}.optimizers.{other}_adam"
    model = types.SimpleNamespace(optimizer=Foreign())
    with pytest.raises(ValueError, match=rf"a class of the {other} backend.*compile=False"):
        saving._check_optimizer_backend(model, saved)


# A bug of ours is not a bad file -------------------------------------------------------


class PlantedBug(Exception):
    """An exception no file reader raises, standing for a bug in this package."""


@pytest.mark.parametrize(
    "where", ["_check_dataset", "_check_h5", "alpha_shape", "_optimizers_of_other_backends"]
)
def test_an_error_in_our_own_code_surfaces_as_itself(saved, monkeypatch, where):
    """The loader turns the errors its readers document into a ValueError
    naming the file; anything else passes through unchanged."""

    def planted(*args, **kwargs):
        raise PlantedBug(where)

    monkeypatch.setattr(saving, where, planted)
    with pytest.raises(PlantedBug, match=where):
        saving.load_model(saved)
    if where in ("_check_dataset", "_check_h5"):
        with pytest.raises(PlantedBug, match=where):
            saving.load_weights(_small_model(), saved)
