"""Tests of examples/: first uses, model builders, the experiment and its report.

The experiment runs for real on tiny settings (2 epochs, 2 seeds, `--limit`);
what needs many runs (the learning-rate choice, an interrupt) runs on made-up
ones.
"""

import json
import math
import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest
from scipy import stats

import keras_prelu
from examples import activation_report
from examples import compare_activations
from examples import models
from examples import prelu_basics

BUILDERS = [models.build_cnn, models.build_plain, models.build_resnet]


def test_prelu_basics_prints_shapes_and_initial_slopes(capsys):
    results = prelu_basics.main([])
    single = results["single slope"]
    assert single["input_shape"] == single["output_shape"] == (1, 64, 64, 3)
    assert single["slopes"].shape == () and single["slopes"] == pytest.approx(0.25)
    assert results["Conv-BN-PReLU block"]["output_shape"] == (1, 32, 32, 16)
    per_channel = results["per-channel slopes"]["slopes"]
    np.testing.assert_array_equal(per_channel.reshape(-1), [0.25] * 3)
    printed = capsys.readouterr().out
    assert "(1, 64, 64, 3)" in printed and "initial slope" in printed


def _acts(model):
    return [layer for layer in model.layers if layer.name.startswith("act")]


@pytest.mark.parametrize("builder", BUILDERS)
def test_builders_use_the_chosen_activation_and_slope_everywhere(builder):
    counts = {}
    for variant in models.ACTIVATIONS:
        model = builder(variant, slope=0.1)
        assert tuple(model.outputs[0].shape) == (None, 10)
        acts = _acts(model)
        assert [layer.name for layer in acts] == [f"act{i}" for i in range(1, len(acts) + 1)]
        counts[variant] = model.count_params()
        if variant.startswith("prelu"):
            expected = "scalar" if variant == "prelu" else "channelwise"
            assert {layer.layout for layer in acts} == {expected}
            for layer in acts:
                np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.alpha), 0.1)
        if variant == "leaky_relu":
            assert [layer.negative_slope for layer in acts] == pytest.approx([0.1] * len(acts))
    slopes_per_channel = sum(int(np.prod(layer.alpha.shape)) for layer in acts)
    assert counts["prelu"] == counts["relu"] + len(acts)
    assert counts["prelu_channelwise"] == counts["relu"] + slopes_per_channel
    assert counts["leaky_relu"] == counts["relu"]
    with pytest.raises(ValueError, match="choose one of"):
        builder("swish")


def test_plain_model_is_deep_he_initialised_and_has_no_batch_norm():
    model = models.build_plain("relu")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 6 and all(conv.use_bias for conv in convs)
    assert all(isinstance(conv.kernel_initializer, keras.initializers.HeNormal) for conv in convs)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert all(act.input is conv.output for act, conv in zip(_acts(model), convs, strict=True))


def test_model_description_is_read_from_the_built_model():
    text = models.describe_model(models.build_cnn("relu", filters=(16, 32)))
    assert "3 activation layers, 2 of them right after BatchNormalization" in text
    assert "act1 <- bn1 (BatchNormalization) <- conv1 (Conv2D 16 3x3" in text
    assert "act3 <- dense (Dense 64" in text
    resnet = models.describe_model(models.build_resnet("relu"))
    assert "act3 <- stage1_block1_add (Add) of act1 and stage1_block1_bn2" in resnet


def test_scaled_prelu_slopes_learn_c_times_as_fast_under_adam():
    x = np.random.default_rng(0).standard_normal((16, 5)).astype("float32")
    moved = {}
    for scale in (1.0, 10.0):
        layer = models.make_activation("prelu", "act", slope=0.25, slope_lr_scale=scale)
        model = keras.Sequential([keras.Input((5,)), layer])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.alpha), 0.25, rtol=1e-6)
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        model.fit(x, np.zeros_like(x), batch_size=16, epochs=1, verbose=0)
        moved[scale] = float(keras.ops.convert_to_numpy(layer.alpha)) - 0.25
    assert isinstance(layer, models.ScaledPReLU)
    assert len(layer.trainable_weights) == 1 and layer.trainable_weights[0] is layer.v
    # Adam's first step is the learning rate: alpha = c * v moves c times as far.
    assert moved[10.0] == pytest.approx(10 * moved[1.0], rel=1e-3)
    assert abs(moved[1.0]) == pytest.approx(1e-3, rel=1e-2)


def test_paired_stats_match_scipy():
    a, b = [0.91, 0.95, 0.90, 0.97, 0.93], [0.90, 0.92, 0.90, 0.93, 0.92]
    found = activation_report.paired_stats(a, b)
    d = np.subtract(a, b)
    np.testing.assert_allclose(found["differences"], d)
    assert found["mean"] == pytest.approx(d.mean())
    interval = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    np.testing.assert_allclose(found["ci95"], interval)
    assert found["p_ttest"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert found["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    # Differences 1, 2, 3, 4: t = 3.873 with 3 degrees of freedom; the exact
    # Wilcoxon p of 4 positive differences is 2 / 2**4.
    known = activation_report.paired_stats([2, 4, 6, 8], [1, 2, 3, 4])
    assert known["p_ttest"] == pytest.approx(0.03047, abs=1e-5)
    assert known["p_wilcoxon"] == pytest.approx(0.125)
    np.testing.assert_allclose(known["ci95"], [0.4457, 4.5543], atol=1e-4)
    same = activation_report.paired_stats([0.5, 0.5], [0.5, 0.5])
    assert same["ci95"] == [0.0, 0.0] and math.isnan(same["p_wilcoxon"])
    assert math.isnan(activation_report.paired_stats([1.0], [0.0])["p_ttest"])


def _tiny(out, *extra):
    return ["--epochs", "2", "--seeds", "2", "--limit", "32", "--batch-size", "16",
            "--probe-size", "32", "--verbose", "0", "--out", str(out), *extra]  # fmt: skip


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
    # PReLU at two slope learning-rate scales: 4 runs. Other variants: on made-up runs, below.
    results = compare_activations.main(
        _tiny(tmp_path, "--variants", "prelu", "--slope-lr-scale", "10")
    )
    saved = _strict_json(tmp_path / "results.json")
    assert saved == results and saved["pending"] == []
    assert saved["config"]["learning_rates"] == [1e-3] and saved["config"]["samples"]["val"] == 32
    groups = [(g["variant"], g["learning_rate"], g["slope_lr_scale"]) for g in saved["runs"]]
    assert groups == [("prelu", 1e-3, 1.0), ("prelu", 1e-3, 10.0)]
    run = saved["runs"][0]["seeds"][0]
    assert len(saved["runs"][0]["seeds"]) == 2 and run["diverged_at"] is None
    assert 0 <= run["test_accuracy"] <= 1 and len(run["history"]["val_accuracy"]) == 2
    assert len(run["seconds_per_epoch"]) == 2 and min(run["seconds_per_epoch"]) > 0
    assert len(run["history"]["dead_units/act1"]) == 2 and "slope/act4/mean" in run["history"]
    assert list(run["slopes"]) == ["act1", "act2", "act3", "act4"]
    assert saved["runs"][1]["seeds"][0]["slope_moved"] > run["slope_moved"] > 0  # c = 10: farther
    assert saved["chosen"]["prelu"]["learning_rate"] == 1e-3
    assert "validation accuracy" in saved["chosen"]["prelu"]["chosen_by"]
    assert {(e["slope_lr_scale"], e["measure"]) for e in saved["slope_lr"]} == {
        (10.0, m) for m in activation_report.SLOPE_MEASURES
    }
    entry = saved["slope_lr"][0]
    assert len(entry["differences"]) == 2 and entry["ci95"][0] <= entry["mean"] <= entry["ci95"][1]
    report = (tmp_path / "report.md").read_text()
    for heading in ("## Summary", "## Learning rates", "## Paired comparisons",
                    "## Slope learning rate", "## Dead units", "## Learned slopes"):  # fmt: skip
        assert heading in report
    assert "| slope moved (mean abs) | PReLU (one slope per layer): c = 10 − c = 1 |" in report
    assert "| PReLU (one slope per layer) | never-positive |" in report
    for figure in ("training_curves.png", "dead_units.png", "slopes.png"):
        assert (tmp_path / figure).stat().st_size > 0 and f"]({figure})" in report
    assert (tmp_path / "logs" / "prelu_lr0.001_c10_seed1.csv").exists()
    for path in [tmp_path / "results.json", tmp_path / "report.md", tmp_path / "slopes.png"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # 0666 less the umask
    summary = capsys.readouterr().out
    assert "test accuracy" in summary and "dead units at the end" in summary
    accuracy = np.mean([run["test_accuracy"] for run in saved["runs"][0]["seeds"]])
    assert f"{100 * accuracy:.1f}%" in summary
    # The report rebuilds from results.json alone, into another folder.
    again = tmp_path / "again"
    path = activation_report.main([str(tmp_path / "results.json"), "--out", str(again)])
    assert (again / "report.md").read_text() == report and path == str(again / "report.md")


def test_a_diverging_run_is_recorded_as_diverged(tmp_path, capsys):
    argv = _tiny(tmp_path, "--variants", "prelu", "--learning-rate", "1e10", "--seeds", "1")
    with pytest.warns(UserWarning, match="NaN or infinite"):  # SlopeMonitor's
        compare_activations.main(argv + ["--verbose", "1"])
    run = _strict_json(tmp_path / "results.json")["runs"][0]["seeds"][0]
    assert run["diverged_at"] >= 1 and run["test_accuracy"] is None
    report = (tmp_path / "report.md").read_text()
    assert "| PReLU (one slope per layer) | 1e+10 | diverged (seeds 0) |" in report
    printed = capsys.readouterr().out
    assert "prelu, learning rate 1e+10, c = 1, seed 0: loss " in printed  # one line per run
    assert "diverged (seeds 0)" in printed


def _fake_run(variant, seed, learning_rate, scale, data, args):
    """What train_once returns, made up: validation accuracy is best at 1e-3
    for every variant, test accuracy at 1e-2; PReLU is 2 pp better than ReLU."""
    epochs, gain = args.epochs, 0.02 if variant == "prelu" else 0.0
    val = 0.9 if learning_rate == 1e-3 else 0.8
    history = {
        "loss": [1.0 - gain] * epochs, "accuracy": [0.9] * epochs,
        "val_loss": [0.5] * epochs, "val_accuracy": [val + gain + 0.01 * seed] * epochs,
        "dead_units/act1": [0.1] * epochs, "dead_units": [0.05] * epochs,
    }  # fmt: skip
    return {
        "seed": seed, "diverged_at": None, "history": history, "params": 10,
        "test_accuracy": (0.95 if learning_rate == 1e-2 else 0.9) + gain + 0.001 * seed,
        "test_loss": 0.3, "seconds_per_epoch": [1.0] * epochs,
        "dead_units_before_training": {"dead_units/act1": 0.0, "dead_units": 0.0},
        "slopes": {}, "slope_moved": None,
    }  # fmt: skip


def test_the_learning_rate_is_chosen_on_validation_accuracy(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_activations, "train_once", _fake_run)
    monkeypatch.setattr(activation_report, "figures", lambda results: {})
    argv = _tiny(tmp_path, "--variants", "relu,prelu", "--learning-rates", "1e-2", "1e-3")
    results = compare_activations.main(argv + ["--seeds", "3"])
    assert results["config"]["learning_rates"] == [1e-3, 1e-2]
    chosen = results["chosen"]["prelu"]
    assert chosen["learning_rate"] == 1e-3  # not 1e-2, where test accuracy is higher
    np.testing.assert_allclose(chosen["validation_accuracy"], [[1e-3, 0.93], [1e-2, 0.83]])
    entry = next(e for e in results["paired"] if e["measure"] == "test_accuracy")
    assert entry["differences"] == pytest.approx([0.02] * 3)  # both at 1e-3, seed by seed
    report = (tmp_path / "report.md").read_text()
    assert "| PReLU (one slope per layer) | 93.0% | 83.0% | 0.001 |" in report
    assert "| PReLU (one slope per layer) | 0.001 | 92.1% ± 0.1% |" in report
    assert "| test accuracy | PReLU (one slope per layer) − ReLU | +2.00, +2.00, +2.00 |" in report
    assert "| ReLU | dead |" in report


def test_an_existing_out_is_refused_and_an_interrupt_keeps_finished_variants(
    tmp_path, monkeypatch, capsys
):
    def interrupted(variant, *args):
        if variant == "prelu":
            raise KeyboardInterrupt
        return _fake_run(variant, *args)

    monkeypatch.setattr(compare_activations, "train_once", interrupted)
    monkeypatch.setattr(activation_report, "figures", lambda results: {})
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, "--variants", "relu,prelu"))
    assert exit_info.value.code == 130
    assert f"Interrupted: {tmp_path} keeps relu." in capsys.readouterr().err
    saved = _strict_json(tmp_path / "results.json")
    assert saved["pending"] == ["prelu"] and [g["variant"] for g in saved["runs"]] == ["relu"]
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path))
    assert exit_info.value.code == 2
    assert "is not empty" in capsys.readouterr().err
    assert (tmp_path / "results.json").read_text() == before


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--variants", "relu,gelu"], "choose from relu, leaky_relu, prelu, prelu_channelwise"),
        (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
        (["--learning-rates", "fast"], "--learning-rate: invalid float value: 'fast'"),
    ],
)
def test_bad_options_name_the_option(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, *argv))
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_failed_download_names_the_offline_dataset(tmp_path, capsys, monkeypatch):
    def offline():
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, "--dataset", "fashion_mnist"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no network" in err and "digits needs no download" in err


def test_report_cli_explains_bad_files(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "other.json").write_text('{"config": {}}')
    messages = {
        "missing.json": "cannot read RESULTS.json",
        "broken.json": "cannot read RESULTS.json",
        "other.json": "is not a results.json of examples.compare_activations",
    }
    for name, message in messages.items():
        with pytest.raises(SystemExit) as exit_info:
            activation_report.main([str(tmp_path / name)])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_script_form_runs_from_any_directory(tmp_path):
    # As a script, Python puts examples/ (not the project root) on the path;
    # an installed package named `examples` (tf2onnx ships one) must not win.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    process = subprocess.run(
        [sys.executable, compare_activations.__file__, "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    assert "usage: python -m examples.compare_activations" in process.stdout


def test_digits_split_is_fixed_and_stratified():
    data = compare_activations.load_dataset("digits")
    assert {key: len(x) for key, (x, _) in data.items()} == {"train": 1221, "val": 216, "test": 360}
    x, y = data["train"]
    assert x.shape[1:] == (8, 8, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert set(np.unique(y)) == set(range(10))
    again = compare_activations.load_dataset("digits", limit=5)
    np.testing.assert_array_equal(again["test"][0], data["test"][0][:5])


def test_default_slope_is_the_library_default():
    assert compare_activations.build_parser().parse_args([]).slope_init == keras_prelu.DEFAULT_SLOPE
