"""Tests of examples/: basics, model builders, the experiment and its report."""

import json
import math
import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_prelu
from examples import activation_report
from examples import compare_activations
from examples import models
from examples import prelu_basics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDERS = [models.build_cnn, models.build_plain, models.build_resnet]


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


def _acts(model):
    return [layer for layer in model.layers if layer.name.startswith("act")]


@pytest.mark.parametrize("builder", BUILDERS)
def test_builders_use_the_chosen_activation_everywhere(builder):
    counts = {}
    for variant in models.ACTIVATIONS:
        model = builder(variant)
        assert tuple(model.outputs[0].shape) == (None, 10)
        acts = _acts(model)
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


@pytest.mark.parametrize("builder", BUILDERS)
def test_builders_take_the_initial_and_fixed_slope(builder):
    for variant in ("prelu", "prelu_channelwise"):
        for layer in _acts(builder(variant, slope=0.1)):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.alpha), 0.1)
    leaky = _acts(builder("leaky_relu", slope=0.1))
    assert leaky and [layer.negative_slope for layer in leaky] == pytest.approx([0.1] * len(leaky))
    with pytest.raises(ValueError, match="Received: slope='steep'"):
        builder("prelu", slope="steep")
    with pytest.raises(ValueError, match="Received: slope=inf"):
        builder("leaky_relu", slope=float("inf"))
    with pytest.raises(ValueError, match="finite in float32.*Received: slope=1e\\+39"):
        builder("prelu", slope=1e39)  # finite in Python, inf as a float32 weight


def test_plain_model_is_deep_he_initialised_and_has_no_batch_norm():
    model = models.build_plain("relu")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert 6 <= len(convs) <= 8
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    for conv in convs:
        assert isinstance(conv.kernel_initializer, keras.initializers.HeNormal)
        assert conv.use_bias
    # Every convolution feeds its own activation layer.
    acts = _acts(model)
    assert len(acts) == len(convs)
    assert all(act.input is conv.output for act, conv in zip(acts, convs, strict=True))


def test_model_description_is_read_from_the_built_model():
    # Not the default sizes, so the text cannot be canned; but layer shapes that
    # other tests build too, as JAX compiles the initializers once per shape.
    text = models.describe_model(models.build_cnn("relu", filters=(16, 32)))
    assert "3 activation layers, 2 of them right after BatchNormalization" in text
    assert "act1 <- bn1 (BatchNormalization) <- conv1 (Conv2D 16 3x3" in text
    assert "act2 <- bn2 (BatchNormalization) <- conv2 (Conv2D 32 3x3" in text
    assert "act3 <- dense (Dense 64" in text
    plain = models.describe_model(models.build_plain("prelu", filters=(16, 16, 32, 32, 64, 64, 64)))
    assert "7 activation layers, 0 of them right after BatchNormalization" in plain
    assert "act7 <- conv7 (Conv2D 64 3x3, HeNormal)" in plain
    resnet = models.describe_model(models.build_resnet("relu"))
    assert "act3 <- stage1_block1_add (Add) of act1 and stage1_block1_bn2" in resnet


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of.*prelu_channelwise"):
        models.build_cnn("swish")


def _tiny(tmp_path, *extra):
    return ["--epochs", "2", "--seeds", "1", "--limit", "40", "--batch-size", "16",
            "--probe-size", "32", "--verbose", "0", "--out", str(tmp_path), *extra]  # fmt: skip


def _strict_json(path):
    def reject(name):
        raise AssertionError(f"{name} in {path}: not strict JSON")

    with open(path) as handle:
        return json.load(handle, parse_constant=reject)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_experiment_writes_results_report_figures_and_a_summary(tmp_path, capsys, umask_022):
    argv = _tiny(tmp_path, "--variants", "prelu_channelwise,relu", "--verbose", "1")
    results = compare_activations.main(argv)
    saved = _strict_json(tmp_path / "results.json")
    assert saved["pending"] == [] and list(saved["variants"]) == ["relu", "prelu_channelwise"]
    assert saved["variants"] == results["variants"]
    assert saved["config"]["learning_rate"] == 1e-3
    assert saved["config"]["learning_rate_source"] == "the default for --model cnn"
    assert saved["config"]["batch_norm"] is True
    assert "act4 <- dense (Dense 64" in saved["config"]["model_description"]
    prelu = saved["variants"]["prelu_channelwise"]
    assert prelu["diverged"] == []
    assert len(prelu["test_accuracy"]["per_seed"]) == 1 and prelu["test_accuracy"]["std"] is None
    assert len(prelu["curves"]["val_accuracy"]["mean"]) == 2
    assert len(prelu["dead_units"]["per_epoch"]["act1"]["per_seed"][0]) == 2
    assert len(prelu["seconds_per_epoch"]["per_seed"][0]) == 2
    assert len(prelu["slopes"]["act2"]["mean_per_epoch"]["mean"]) == 2
    assert [s["depth"] for s in prelu["slopes"].values()] == [1, 2, 3, 4]
    assert prelu["slopes"]["act1"]["count"] == 16  # one slope per channel of the first block
    assert "slopes" not in saved["variants"]["relu"]
    report = (tmp_path / "report.md").read_text()
    headings = ["## Summary", "## Conclusions", "## Test accuracy", "## Dead units",
                "### Dead units per layer and epoch", "## Learned slopes", "## Time"]  # fmt: skip
    assert all(heading in report for heading in headings)
    for figure in ("training_curves.png", "dead_units.png", "slopes.png"):
        assert (tmp_path / figure).stat().st_size > 0 and f"]({figure})" in report
    assert "With one seed, whether PReLU changed test accuracy cannot be judged." in report
    assert "is not a measure of the layer's cost" in report and "benchmarks/benchmark.py" in report
    assert (tmp_path / "logs" / "prelu_channelwise_seed0.csv").exists()
    # Every output is written with the usual permissions: 0666 less the umask.
    for path in [tmp_path / "results.json", tmp_path / "report.md", tmp_path / "slopes.png"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    out = capsys.readouterr().out
    # One progress bar per run (the bar's line ends once), not Keras's per-epoch bars.
    bars = [line for line in out.split("\n") if "━" in line]
    assert len(bars) == 2 and "Epoch 1/2" not in out
    assert all("loss:" in bar and "accuracy:" in bar and "val_" not in bar for bar in bars)
    assert "ReLU, seed 1/1" in out and "PReLU (one slope per channel), seed 1/1" in out
    summary = out[out.index("variant") :]
    assert "test accuracy" in summary and "training loss after epoch 1" in summary
    assert "dead units at the end" in summary and "s/epoch" in summary
    assert f"{_pct(prelu['test_accuracy']['mean'])}" in summary


def _pct(value):
    return f"{100 * value:.1f}%"


def test_a_diverging_run_is_recorded_and_the_others_go_on(tmp_path, capsys):
    # A learning rate of 1e10 blows the run up within a few steps. (That the
    # other variants go on is checked with made-up runs, below.)
    argv = _tiny(tmp_path, "--variants", "prelu", "--learning-rate", "1e10")
    with pytest.warns(UserWarning, match="NaN or infinite"):  # SlopeMonitor's
        compare_activations.main(argv)
    saved = _strict_json(tmp_path / "results.json")
    assert list(saved["variants"]) == ["prelu"] and saved["pending"] == []
    prelu = saved["variants"]["prelu"]
    assert [d["seed"] for d in prelu["diverged"]] == [0]
    assert prelu["test_accuracy"]["per_seed"] == [None]
    assert prelu["curves"]["loss"]["per_seed"][0][-1] is None
    report = (tmp_path / "report.md").read_text()
    assert "PReLU (one slope per layer) diverged in 1 of 1 seeds: seed 0 (epoch" in report
    assert "| PReLU (one slope per layer) | diverged (seed 0) |" in report
    assert (tmp_path / "training_curves.png").exists()
    assert "diverged (seed 0)" in capsys.readouterr().out


def _fake_run(variant, seed, data, args, distribution, log_dir):
    """What train_once returns, made up: for the plumbing, not the training.

    Accuracy: PReLU beats ReLU by far more than the seed spread; slopes fall
    with depth; ReLU loses units. LeakyReLU diverges in seed 1. The
    prelu_channelwise run is interrupted (Ctrl-C) after writing part of its log.
    """
    path = compare_activations.log_path(log_dir, variant, seed)
    with open(path, "w") as handle:
        handle.write("epoch,loss\n")
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
    diverged = variant == "leaky_relu" and seed == 1
    if diverged:
        history["loss"][1:] = [math.nan] * (epochs - 1)
    slopes = {}
    if variant == "prelu":
        slopes = {"act1": [0.5 + 0.01 * seed], "act2": [0.1]}
        for name, (value,) in slopes.items():
            history.update(
                {f"slope/{name}/{stat}": [value] * epochs for stat in ("mean", "min", "max")}
            )
    return {
        "history": history, "diverged_at": 2 if diverged else None,
        "test_accuracy": math.nan if diverged else 0.9 + gain + 0.002 * seed, "test_loss": 0.3,
        "params": 10 + len(slopes),
        "seconds_per_epoch": [2.0] + [0.5 + 0.1 * gain] * (epochs - 1), "slopes": slopes,
        "dead_units_before_training": {
            "dead_units/act1": 0.0, "dead_units/act2": 0.0, "dead_units": 0.0
        },
    }  # fmt: skip


def _no_figures(results):
    return {}  # drawing takes seconds; the tests that look at figures draw them


def _fake_experiment(tmp_path, monkeypatch, variants="relu,leaky_relu,prelu", *extra):
    monkeypatch.setattr(compare_activations, "train_once", _fake_run)
    monkeypatch.setattr(activation_report, "figures", _no_figures)
    argv = _tiny(tmp_path, "--seeds", "3", "--variants", variants, "--slope-init", "0.1", *extra)
    return compare_activations.main(argv)


def test_interrupt_keeps_complete_variants_and_removes_the_partial_log(
    tmp_path, monkeypatch, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        _fake_experiment(tmp_path, monkeypatch, "relu,leaky_relu,prelu,prelu_channelwise")
    assert exit_info.value.code == 130
    saved = _strict_json(tmp_path / "results.json")
    assert list(saved["variants"]) == ["relu", "leaky_relu", "prelu"]
    assert saved["pending"] == ["prelu_channelwise"]
    assert not (tmp_path / "logs" / "prelu_channelwise_seed0.csv").exists()
    assert (tmp_path / "logs" / "prelu_seed2.csv").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        f"Interrupted: kept relu, leaky_relu, prelu in {tmp_path}; removed the partial log "
        f"{tmp_path / 'logs' / 'prelu_channelwise_seed0.csv'}." in err
    )
    report = (tmp_path / "report.md").read_text()
    assert "Incomplete run**: not yet trained: prelu_channelwise" in report


def test_interrupt_before_training_exits_130_without_a_traceback(tmp_path, monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_activations, "load_dataset", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path))
    assert exit_info.value.code == 130
    assert "Interrupted before training started: nothing was written." in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_report_conclusions_follow_the_numbers(tmp_path, monkeypatch):
    results = _fake_experiment(tmp_path, monkeypatch)
    saved = _strict_json(tmp_path / "results.json")
    assert saved == results
    assert saved["config"]["slope_init"] == 0.1
    prelu = saved["variants"]["prelu"]
    assert prelu["initial_slope"] == 0.1 and saved["variants"]["relu"]["initial_slope"] is None
    assert prelu["test_accuracy"]["per_seed"] == pytest.approx([0.95, 0.952, 0.954])
    # LeakyReLU diverged in seed 1: null in the file, and left out of the comparisons.
    leaky = saved["variants"]["leaky_relu"]
    assert leaky["diverged"] == [{"seed": 1, "epoch": 2}]
    assert leaky["test_accuracy"]["per_seed"][1] is None and leaky["test_accuracy"]["mean"] is None
    report = (tmp_path / "report.md").read_text()
    assert (
        "LeakyReLU (slope 0.1, fixed) diverged in 1 of 3 seeds: seed 1 (epoch 2). Its losses "
        "became NaN or infinite, so it is left out of every comparison." in report
    )
    assert "| LeakyReLU (slope 0.1, fixed) | diverged (seed 1) | 90.0%, diverged, 90.4% |" in report
    assert "vs LeakyReLU" not in report
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
    assert (
        "ReLU ended with dead units in 1 of 2 layers (act1 20.0%; mean over seeds). Fewer dead "
        "units at the end in those layers: PReLU (one slope per layer) in 1." in report
    )
    assert "PReLU slopes start at, and LeakyReLU's is fixed at, 0.1." in report
    assert "mean learned slope by depth (initially 0.1): act1 0.510, act2 0.100" in report
    assert "every slope starts at 0.1." in report
    assert "No layer mean moved more than 0.410 from the start (act1, +0.410)" in report
    assert "This matches He et al. 2015" in report
    assert "BatchNormalization's moving statistics" in report  # the cnn has BatchNorm
    assert (
        "| validation accuracy averaged over the epochs | PReLU (one slope per layer) vs ReLU |"
        in report
    )
    assert "| act1 | 0.0% | 10.0% | 20.0% |" in report  # ReLU's act1 per epoch, from epoch 0


def test_rerun_resumes_and_other_options_are_refused(tmp_path, monkeypatch, capsys):
    _fake_experiment(tmp_path, monkeypatch, "relu")
    trained = []

    def counting_run(variant, seed, *args):
        trained.append((variant, seed))
        return _fake_run(variant, seed, *args)

    monkeypatch.setattr(compare_activations, "train_once", counting_run)
    argv = _tiny(tmp_path, "--seeds", "3", "--variants", "relu,prelu", "--slope-init", "0.1")
    results = compare_activations.main(argv)
    assert trained == [("prelu", 0), ("prelu", 1), ("prelu", 2)]
    assert list(results["variants"]) == ["relu", "prelu"]
    assert "Resuming in" in capsys.readouterr().out
    # The cnn's default learning rate, given explicitly, is the same configuration.
    compare_activations.main(argv + ["--learning-rate", "1e-3"])
    assert len(trained) == 3
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(argv[:1] + ["3"] + argv[2:])  # --epochs 3
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--out '{tmp_path}'" in err and "epochs 2 there, 3 now" in err
    assert (tmp_path / "results.json").read_text() == before
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(SystemExit):
        compare_activations.main(argv)
    assert "results.json cannot be resumed: not valid JSON" in capsys.readouterr().err


def test_figures_tell_the_variants_apart(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures = activation_report.figures
    results = _fake_experiment(tmp_path, monkeypatch)
    made = figures(results)
    try:
        lines = made["training_curves.png"].axes[0].get_lines()
        labels = [line.get_label() for line in lines]
        assert labels == [
            "ReLU",
            "LeakyReLU (slope 0.1, fixed) (diverged)",
            "PReLU (one slope per layer)",
        ]
        assert len({line.get_linestyle() for line in lines}) == 3
        assert len({line.get_marker() for line in lines}) == 3
        accuracy = made["training_curves.png"].axes[2]
        assert "%" in accuracy.get_title()
        assert np.nanmax(accuracy.get_lines()[0].get_ydata()) > 1  # percent, not a fraction
        dead = made["dead_units.png"].axes
        assert [ax.get_title() for ax in dead[:3]] == ["act1", "act2", "all layers"]
        assert max(dead[0].get_lines()[0].get_ydata()) == pytest.approx(100 * 0.1 * 2)
    finally:
        for fig in made.values():
            plt.close(fig)


def test_report_cli_rebuilds_the_report_and_explains_bad_files(tmp_path, monkeypatch, capsys):
    _fake_experiment(tmp_path / "run", monkeypatch)
    monkeypatch.undo()  # draw the figures this time
    out = tmp_path / "again"
    path = activation_report.main([str(tmp_path / "run" / "results.json"), "--out", str(out)])
    assert path == str(out / "report.md")
    report = (out / "report.md").read_text()
    assert (tmp_path / "run" / "report.md").read_text() in report  # now with figures
    assert "](dead_units.png)" in report and (out / "dead_units.png").exists()
    assert "PReLU (one slope per layer)" in capsys.readouterr().out  # the summary
    bad = {
        "missing.json": (None, "cannot read RESULTS.json"),
        "nan.json": ('{"config": NaN}', "not strict JSON: it contains NaN"),
        "broken.json": ("{", "is not valid JSON"),
        "other.json": ('{"config": {}}', "not a results.json of examples.compare_activations"),
    }
    for name, (text, message) in bad.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(SystemExit) as exit_info:
            activation_report.main([str(tmp_path / name)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_script_form_runs_from_any_directory(tmp_path):
    # As a script, Python puts examples/ (not the project root) on the path;
    # an installed package named `examples` (tf2onnx ships one) must not win.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "compare_activations.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "usage: python -m examples.compare_activations" in process.stdout


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--variants", "relu,gelu"], "choose from: relu, leaky_relu, prelu, prelu_channelwise"),
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
        (["--seeds", "0"], "argument --seeds: must be an integer from 1 to 100. Received: '0'"),
        (["--seeds", "101"], "argument --seeds: must be an integer from 1 to 100"),
        (["--epochs", "0"], "argument --epochs: must be an integer from 1 to 1000"),
        (["--limit", "0"], "argument --limit: must be an integer >= 1. Received: '0'"),
        (["--learning-rate", "inf"], "argument --learning-rate: must be a finite number > 0"),
        (["--learning-rate", "0"], "argument --learning-rate: must be a finite number > 0"),
        (["--learning-rate", "nan"], "argument --learning-rate: must be a finite number > 0"),
        (["--weight-decay=-1e-4"], "argument --weight-decay: must be a finite number >= 0"),
        (["--weight-decay", "inf"], "argument --weight-decay: must be a finite number >= 0"),
        (["--slope-init", "nan"], "argument --slope-init: must be a number that is finite"),
        (["--slope-init", "1e39"], "in float32. Received: '1e39'"),
    ],
)
def test_bad_options_name_the_option_and_value(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, *argv))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_plain_model_has_its_own_default_learning_rate(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_activations, "train_once", _fake_run)
    monkeypatch.setattr(activation_report, "figures", _no_figures)
    results = compare_activations.main(_tiny(tmp_path, "--model", "plain", "--variants", "relu"))
    config = results["config"]
    assert config["learning_rate"] == compare_activations.LEARNING_RATES["plain"] != 1e-3
    assert config["learning_rate_source"] == "the default for --model plain"
    assert config["batch_norm"] is False and "plain_relu" in config["model_description"]


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
    assert activation_report.spearman([1, 2, 3], [1, 1, 1]) is None
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
    variants = {"prelu": {"slopes": slopes, "diverged": [], "initial_slope": 0.25}}
    (text,) = activation_report.slope_findings(variants)
    assert "fall with depth" in text and "matches He et al." in text
    assert "2 of 6 slopes went negative" in text
