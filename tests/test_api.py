"""The public API keeps its word: moved names warn, modules say what is public."""

import importlib
import inspect
import pathlib
import pkgutil
import warnings

import pytest

import keras_prelu
from tests.helpers import ROOT

PUBLIC_MODULES = ["keras_prelu"] + [
    f"keras_prelu.{info.name}"
    for info in pkgutil.iter_modules(keras_prelu.__path__)
    if not info.name.startswith("_")
]

# Names 0.1.0's README used that moved in 0.2.0: (old module, name, new module).
MOVED = [
    ("keras_prelu", "SlopeMonitor", "keras_prelu.callbacks"),
    ("keras_prelu", "DeadUnitMonitor", "keras_prelu.callbacks"),
    ("keras_prelu", "exclude_slopes_from_weight_decay", "keras_prelu.callbacks"),
    ("keras_prelu.saving", "from_builtin_prelu", "keras_prelu.migration"),
    ("keras_prelu.saving", "to_builtin_prelu", "keras_prelu.migration"),
    ("keras_prelu.saving", "from_torch_prelu", "keras_prelu.migration"),
    ("keras_prelu.saving", "slopes_from_torch", "keras_prelu.migration"),
]
MOVED_IDS = [f"{old}.{name}" for old, name, _ in MOVED]


def test_public_modules_are_the_documented_ones():
    assert sorted(PUBLIC_MODULES) == [
        "keras_prelu",
        "keras_prelu.callbacks",
        "keras_prelu.export",
        "keras_prelu.migration",
        "keras_prelu.saving",
    ]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_defines_all_and_every_name_exists(module_name):
    module = importlib.import_module(module_name)
    assert isinstance(module.__all__, list), module_name
    assert len(set(module.__all__)) == len(module.__all__), module.__all__
    for name in module.__all__:
        assert not name.startswith("_") or name == "__version__", name
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a public name is no deprecated alias
            getattr(module, name)
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(module.__all__)


def _is_annotated(function):
    signature = inspect.signature(function)
    parameters = [p for name, p in signature.parameters.items() if name != "self"]
    return signature.return_annotation is not inspect.Signature.empty and all(
        p.annotation is not inspect.Parameter.empty for p in parameters
    )


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_functions_and_constructors_are_annotated(module_name):
    """keras_prelu ships py.typed: what it exports must carry types."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value):
            assert _is_annotated(value.__init__), f"{module_name}.{name}.__init__"
        elif inspect.isfunction(value):
            assert _is_annotated(value), f"{module_name}.{name}"


def test_the_package_is_marked_as_typed():
    assert (pathlib.Path(keras_prelu.__file__).parent / "py.typed").is_file()


def test_the_version_is_written_once():
    """pyproject.toml takes it from the package (setuptools reads it without
    importing), and the installed metadata agrees."""
    import importlib.metadata

    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "keras_prelu.__version__"
    }
    assert importlib.metadata.version("keras-prelu") == keras_prelu.__version__


@pytest.mark.parametrize("old_module,name,new_module", MOVED, ids=MOVED_IDS)
def test_moved_name_is_the_same_object_and_warns_where_it_lives_now(old_module, name, new_module):
    old, new = importlib.import_module(old_module), importlib.import_module(new_module)
    with pytest.warns(DeprecationWarning) as record:
        alias = getattr(old, name)
    assert alias is getattr(new, name)
    assert len(record) == 1
    message = str(record[0].message)
    assert f"`{old_module}.{name}` is deprecated" in message
    assert f"from {new_module} import {name}" in message
    assert "0.4" in message
    # The warning points at the line that used the old name, not at keras_prelu.
    assert record[0].filename == __file__


@pytest.mark.parametrize("old_module,name,new_module", MOVED, ids=MOVED_IDS)
def test_moved_name_imports_as_in_0_1_0(old_module, name, new_module):
    namespace = {}
    with pytest.warns(DeprecationWarning, match=f"import `{name}` from `{new_module}`"):
        exec(f"from {old_module} import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(new_module), name)


@pytest.mark.parametrize("old_module,name,new_module", MOVED, ids=MOVED_IDS)
def test_moved_names_stay_out_of_all_and_dir(old_module, name, new_module):
    """Tab completion and `import *` offer only the new place."""
    old = importlib.import_module(old_module)
    assert name not in old.__all__
    assert name not in dir(old)


@pytest.mark.parametrize("module_name", ["keras_prelu", "keras_prelu.saving"])
def test_unknown_names_still_raise_attribute_error_without_a_warning(module_name):
    module = importlib.import_module(module_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match=f"module '{module_name}' has no attribute 'nope'"):
            _ = module.nope
        assert not hasattr(module, "nope")
