"""Smoke tests of examples/: basics, model builders and the comparison experiment."""

import json

import keras
import numpy as np
import pytest

import keras_prelu
from examples import activation_report
from examples import compare_activations
from examples import models
from examples import prelu_basics


def test_prelu_basics_prints_shapes_and_initial_slopes(capsys):
    results = prelu_basics.main([])
    single = results["single slope"]
    assert single["input_shape"] == single["output_shape"] == (1, 64, 64, 3)
    assert single["slopes"].shape == () and single["slopes"] == pytest.approx(0.25)
    assert results["Conv-BN-PReLU block"]["output_shape"] == (1, 32, 32, 16)
    per_channel = results["per-channel slopes"]["slopes"]
    assert per_channel.shape == (1, 1, 3)
    np.testing.assert_array_equal(per_channel.ravel(), [0.25] * 3)
    printed = capsys.readouterr().out
    assert "(1, 64, 64, 3)" in printed and "initial slope" in printed


def test_conv_bn_prelu_block_has_one_or_per_channel_slopes():
    assert prelu_basics.conv_bn_prelu_block().layers[-1].alpha.shape == ()
    block = prelu_basics.conv_bn_prelu_block(3, 8, layout="channelwise")
    assert tuple(block.layers[-1].alpha.shape) == (1, 1, 8)


@pytest.mark.parametrize("builder", [models.build_cnn, models.build_resnet])
def test_builders_use_the_chosen_activation_everywhere(builder):
    counts = {}
    for variant in models.ACTIVATIONS:
        model = builder(variant)
        assert tuple(model.outputs[0].shape) == (None, 10)
        acts = [layer for layer in model.layers if layer.name.startswith("act")]
        assert [layer.name for layer in acts] == [f"act{i}" for i in range(1, len(acts) + 1)]
        counts[variant] = model.count_params()
        if variant.startswith("prelu"):
            assert all(isinstance(layer, keras_prelu.PReLU) for layer in acts)
            expected = "scalar" if variant == "prelu" else "channelwise"
            assert {layer.layout for layer in acts} == {expected}
    slopes_per_channel = sum(int(np.prod(layer.alpha.shape)) for layer in acts)
    assert counts["prelu"] == counts["relu"] + len(acts)
    assert counts["prelu_channelwise"] == counts["relu"] + slopes_per_channel
    assert counts["leaky_relu"] == counts["relu"]
    # One eager call: the last model (channel-wise PReLU) runs and gives probabilities.
    out = keras.ops.convert_to_numpy(
        model(np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32"))
    )
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("builder", [models.build_cnn, models.build_resnet])
def test_builders_take_the_initial_and_fixed_slope(builder):
    for variant in ("prelu", "prelu_channelwise"):
        acts = [
            layer for layer in builder(variant, slope=0.1).layers if layer.name.startswith("act")
        ]
        for layer in acts:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.alpha), 0.1)
    leaky = [
        layer for layer in builder("leaky_relu", slope=0.1).layers if layer.name.startswith("act")
    ]
    assert leaky and [layer.negative_slope for layer in leaky] == pytest.approx([0.1] * len(leaky))
    with pytest.raises(ValueError, match="Received: slope='steep'"):
        builder("prelu", slope="steep")
    with pytest.raises(ValueError, match="Received: slope=inf"):
        builder("leaky_relu", slope=float("inf"))


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of.*prelu_channelwise"):
        models.build_cnn("swish")


def _tiny(tmp_path, *extra):
    return ["--epochs", "2", "--seeds", "1", "--limit", "40", "--batch-size", "16",
            "--probe-size", "32", "--verbose", "0", "--out", str(tmp_path), *extra]  # fmt: skip


def test_experiment_writes_results_report_and_plots(tmp_path):
    results = compare_activations.main(_tiny(tmp_path, "--variants", "relu,prelu_channelwise"))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["pending"] == [] and list(saved["variants"]) == ["relu", "prelu_channelwise"]
    assert saved["variants"] == json.loads(json.dumps(results["variants"]))
    prelu = saved["variants"]["prelu_channelwise"]
    assert len(prelu["test_accuracy"]["per_seed"]) == 1 and prelu["test_accuracy"]["std"] is None
    assert len(prelu["curves"]["val_accuracy"]["mean"]) == 2
    assert len(prelu["dead_units"]["per_epoch"]["act1"]["per_seed"][0]) == 2
    assert len(prelu["seconds_per_epoch"]["per_seed"][0]) == 2
    assert len(prelu["slopes"]["act2"]["mean_per_epoch"]["mean"]) == 2
    assert [s["depth"] for s in prelu["slopes"].values()] == [1, 2, 3, 4]
    assert prelu["slopes"]["act1"]["count"] == 16  # one slope per channel of the first block
    assert "slopes" not in saved["variants"]["relu"]
    report = (tmp_path / "report.md").read_text()
    for heading in (
        "## Conclusions",
        "## Test accuracy",
        "## Dead units",
        "## Learned slopes",
        "## Time",
    ):
        assert heading in report
    for figure in ("training_curves.png", "dead_units.png", "slopes.png"):
        assert (tmp_path / figure).stat().st_size > 0 and f"]({figure})" in report
    assert "With one seed, whether PReLU changed test accuracy cannot be judged." in report
    assert (tmp_path / "logs" / "prelu_channelwise_seed0.csv").exists()


def _fake_run(variant, seed, data, args, distribution, log_dir):
    """What train_once returns, made up: for the plumbing, not the training.

    Accuracy: PReLU beats ReLU by far more than the seed spread; slopes fall
    with depth; ReLU loses units. The prelu_channelwise run is interrupted.
    """
    if variant == "prelu_channelwise":
        raise KeyboardInterrupt
    epochs, gain = args.epochs, 0.05 if variant == "prelu" else 0.0
    dead = [0.0] * epochs if variant == "prelu" else [0.1 * (e + 1) for e in range(epochs)]
    history = {
        "loss": [1.0 / (e + 1) for e in range(epochs)],
        "accuracy": [0.5 + 0.1 * e for e in range(epochs)],
        "val_loss": [1.1 / (e + 1) for e in range(epochs)],
        "val_accuracy": [0.5 + 0.1 * e + 3 * gain + 0.001 * seed for e in range(epochs)],
        "dead_units/act1": dead, "dead_units/act2": [0.0] * epochs,
        "dead_units": [d / 2 for d in dead],
    }  # fmt: skip
    slopes = {}
    if variant == "prelu":
        slopes = {"act1": [0.5 + 0.01 * seed], "act2": [0.1]}
        for name, (value,) in slopes.items():
            history.update(
                {f"slope/{name}/{stat}": [value] * epochs for stat in ("mean", "min", "max")}
            )
    return {
        "history": history, "test_accuracy": 0.9 + gain + 0.002 * seed, "test_loss": 0.3,
        "params": 10 + len(slopes),
        "seconds_per_epoch": [2.0] + [0.5 + 0.1 * gain] * (epochs - 1), "slopes": slopes,
        "dead_units_before_training": {
            "dead_units/act1": 0.0, "dead_units/act2": 0.0, "dead_units": 0.0
        },
    }  # fmt: skip


def test_interrupted_experiment_keeps_the_completed_variants(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_activations, "train_once", _fake_run)
    with pytest.raises(KeyboardInterrupt):
        compare_activations.main(
            _tiny(
                tmp_path,
                "--seeds",
                "3",
                "--variants",
                "relu,prelu,prelu_channelwise",
                "--slope-init",
                "0.1",
            )
        )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["variants"]) == ["relu", "prelu"]
    assert saved["config"]["slope_init"] == 0.1
    assert (
        saved["variants"]["prelu"]["initial_slope"] == 0.1
        and saved["variants"]["relu"]["initial_slope"] is None
    )
    assert saved["pending"] == ["prelu_channelwise"]
    assert saved["variants"]["prelu"]["test_accuracy"]["per_seed"] == pytest.approx(
        [0.95, 0.952, 0.954]
    )
    report = (tmp_path / "report.md").read_text()
    assert "Incomplete run**: not yet trained: prelu_channelwise" in report
    # The conclusions follow the numbers.
    assert (
        "PReLU clearly (by more than twice the seed spread) changed test accuracy, for the better."
        in report
    )
    assert (
        "PReLU (one slope per layer) 95.2% ± 0.2% (+5.0 pp, more than twice the seed spread, 25.0x)"
        in report
    )
    assert "PReLU slightly" not in report
    assert "changed dead units at the end, for the better. ReLU 10.0% ± 0.0%" in report
    assert "PReLU slopes start at, and LeakyReLU's is fixed at, 0.1." in report
    assert "mean learned slope by depth (initially 0.1): act1 0.510, act2 0.100" in report
    assert "every slope starts at 0.1." in report
    assert "No layer mean moved more than 0.410 from the start (act1, +0.410)" in report
    assert "This matches He et al. 2015" in report
    assert (
        "| validation accuracy averaged over the epochs | PReLU (one slope per layer) vs ReLU |"
        in report
    )
    assert (tmp_path / "slopes.png").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--variants", "relu,gelu"], "choose from: relu, leaky_relu, prelu, prelu_channelwise"),
        (["--dataset", "mnist"], "choose one of: digits, fashion_mnist, cifar10"),
        (["--model", "vgg"], "choose one of: cnn, resnet"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--slope-init", "nan"], "--slope-init must be a finite number, got nan"),
    ],
)
def test_bad_options_fail_with_the_choices(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, *argv))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def _no_training(*args, **kwargs):
    raise AssertionError("must fail before loading data or training")


def test_unwritable_out_fails_before_any_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare_activations, "load_dataset", _no_training)
    monkeypatch.setattr(compare_activations, "train_once", _no_training)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        compare_activations.main(_tiny(tmp_path) + ["--out", str(blocker / "out")])
    assert "cannot be written" in capsys.readouterr().err


def test_offline_dataset_names_the_offline_default(tmp_path, capsys, monkeypatch):
    def offline():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    monkeypatch.setattr(compare_activations, "train_once", _no_training)
    with pytest.raises(SystemExit):
        compare_activations.main(_tiny(tmp_path, "--dataset", "fashion_mnist"))
    err = capsys.readouterr().err
    assert (
        "Could not load fashion_mnist" in err and "--dataset digits" in err and "no network" in err
    )


@pytest.mark.requires_backend("torch")
def test_distribute_on_torch_says_it_is_not_supported(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare_activations, "train_once", _no_training)
    with pytest.raises(SystemExit):
        compare_activations.main(_tiny(tmp_path, "--distribute"))
    assert "--distribute is not supported on the torch backend" in capsys.readouterr().err


def test_digits_split_is_fixed_and_stratified():
    data = compare_activations.load_dataset("digits")
    sizes = {key: len(x) for key, (x, _) in data["splits"].items()}
    assert sizes == {"train": 1221, "val": 216, "test": 360}
    x, y = data["splits"]["train"]
    assert x.shape[1:] == (8, 8, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert set(np.unique(y)) == set(range(10))
    again = compare_activations.load_dataset("digits", limit=5)
    np.testing.assert_array_equal(again["splits"]["test"][0], data["splits"]["test"][0][:5])


def _stats(values):
    values = np.asarray(values, dtype="float64")
    return {
        "per_seed": values.tolist(),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)),
    }


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([0.90, 0.92, 0.94], [0.91, 0.93, 0.95], "within the seed-to-seed spread"),
        ([0.90, 0.92, 0.94], [0.935, 0.955, 0.975], "suggestive only"),
        ([0.90, 0.91, 0.92], [0.95, 0.96, 0.97], "more than twice"),
    ],
)
def test_verdict_compares_the_difference_with_the_seed_spread(a, b, expected):
    verdict, _ = activation_report.spread_verdict(_stats(a), _stats(b))
    assert expected in verdict
    single = {"per_seed": [0.9], "mean": 0.9, "std": None}
    assert "one seed only" in activation_report.spread_verdict(single, single)[0]


def test_spearman_and_slope_depth_conclusion():
    assert activation_report.spearman([1, 2, 3, 4], [0.5, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    assert activation_report.spearman([1, 2], [1, 2]) is None
    slopes = {
        f"act{d}": {
            "depth": d,
            "count": 1,
            "per_seed": [[m], [m]],
            "mean": _stats([m, m]),
            "min": m,
            "max": m,
        }
        for d, m in zip((1, 2, 3), (0.6, 0.2, -0.1), strict=True)
    }
    (text,) = activation_report.slope_findings({"prelu": {"slopes": slopes}})
    assert "fall with depth" in text and "matches He et al." in text
    assert "2 of 6 slopes went negative" in text
