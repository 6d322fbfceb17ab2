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
from examples import stats as paired

BUILDERS = [models.build_cnn, models.build_plain]


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


@pytest.mark.parametrize("depth,lengths", [(4, [2, 1, 1]), (8, [3, 3, 2]), (12, [4, 4, 4])])
def test_plain_model_has_depth_convolutions_in_stages_and_no_batch_norm(depth, lengths):
    model = models.build_plain("relu", (28, 28, 1), depth=depth)  # widths 16, 32, 64
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == depth and all(conv.use_bias for conv in convs)
    widths = [16] * lengths[0] + [32] * lengths[1] + [64] * lengths[2]
    assert [conv.filters for conv in convs] == widths
    assert all(isinstance(conv.kernel_initializer, keras.initializers.HeNormal) for conv in convs)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert all(act.input is conv.output for act, conv in zip(_acts(model), convs, strict=True))
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 2 and tuple(model.layers[-3].output.shape) == (None, 7, 7, 64)


def test_model_description_is_read_from_the_built_model():
    text = models.describe_model(models.build_cnn("relu", filters=(16, 32)))
    assert "3 activation layers, 2 of them right after BatchNormalization" in text
    assert "act1 <- bn1 (BatchNormalization) <- conv1 (Conv2D 16 3x3" in text
    assert "act3 <- dense (Dense 64" in text
    plain = models.describe_model(models.build_plain("relu", depth=4))
    assert (
        "4 activation layers, 0 of them" in plain
        and "act4 <- conv4 (Conv2D 64 3x3, HeNormal)" in plain
    )


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


# ## The statistics


def test_paired_stats_match_scipy():
    a, b = [0.91, 0.95, 0.90, 0.97, 0.93], [0.90, 0.92, 0.90, 0.93, 0.92]
    found = paired.paired_stats(a, b)
    d = np.subtract(a, b)
    np.testing.assert_allclose(found["differences"], d)
    assert found["mean"] == pytest.approx(d.mean()) and found["signs"] == [4, 0, 1]
    interval = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    np.testing.assert_allclose(found["ci95"], interval)
    assert found["p_ttest"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # Differences 1, 2, 3, 4: t = 3.873 with 3 degrees of freedom; only the observed
    # signs and their mirror reach |sum| = 10, so the exact p is 2 / 2**4.
    known = paired.paired_stats([2, 4, 6, 8], [1, 2, 3, 4])
    assert known["p_ttest"] == pytest.approx(0.03047, abs=1e-5) and known["p"] == 0.125
    np.testing.assert_allclose(known["ci95"], [0.4457, 4.5543], atol=1e-4)
    assert math.isnan(paired.paired_stats([1.0], [0.0])["p_ttest"])


def test_equal_differences_give_no_p_of_zero():
    # Four equal, non-zero differences: the t-test would say p = 0 with a zero-width interval.
    equal = paired.paired_stats([2.0] * 4, [1.0] * 4)
    assert equal["p"] == 0.125 and math.isnan(equal["p_ttest"]) and equal["ci95"] == [1.0, 1.0]
    zero = paired.paired_stats([0.5, 0.5], [0.5, 0.5])
    assert zero["p"] == 1.0 and zero["signs"] == [0, 0, 2]


def test_sign_flip_test_is_exact():
    # +-3 +-1 +-2: of the 8 sums (6, 2, 4, 0, 0, -4, -2, -6), 4 reach |4|.
    assert paired.sign_flip_p([3, -1, 2]) == 0.5
    assert paired.sign_flip_p([3, -1, 2], "greater") == 2 / 8
    assert paired.sign_flip_p([3, -1, 2], "less") == 7 / 8
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=10), rng.normal(size=10) + 0.5
    exact = stats.permutation_test(
        (a, b), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    )
    assert paired.sign_flip_p(a - b) == pytest.approx(exact.pvalue)
    # Beyond EXACT_UP_TO seeds the patterns are sampled, the observed one included.
    many = paired.sign_flip_p(np.ones(paired.EXACT_UP_TO + 4))
    assert 0 < many < 1e-4


def test_dead_unit_counts_get_the_exact_test():
    # Dead units per seed, bounded at 0: five seeds lose units, one ties at 0. A tie
    # cannot change sign, so p is that of five all-positive differences: 2 / 2**5.
    relu, prelu = [3, 0, 5, 2, 4, 1], [0, 0, 0, 0, 0, 0]
    found = paired.paired_stats(relu, prelu)
    assert found["p"] == 0.0625 and found["signs"] == [5, 0, 1]


def test_tost_against_hand_computed_cases():
    d = [0.1, -0.1, 0.2, 0.0]
    # Margin 0.5: d + 0.5 and d - 0.5 keep one sign, so each one-sided p is 1 / 16.
    assert paired.tost_p(d, 0.5) == 1 / 16
    # Margin 0.05: d + 0.05 = (.15, -.05, .25, .05) reaches its sum 0.4 in 3 of 16 patterns;
    # d - 0.05 = (.05, -.15, .15, -.05) sums to 0, and 10 of 16 patterns are <= 0.
    assert paired.sign_flip_p(np.add(d, 0.05), "greater") == 3 / 16
    assert paired.tost_p(d, 0.05) == 10 / 16
    assert paired.paired_stats(d, [0.0] * 4, margin=0.5)["p_tost"] == 1 / 16


def test_holm_against_a_hand_computed_case():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    adjusted = paired.holm([0.01, 0.04, 0.03, math.nan, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, math.nan, 0.02])
    assert paired.holm([0.5, 0.9]) == [1.0, 1.0]


# ## Measurements


def test_convergence_records_the_loss_before_training_and_the_steps_to_target():
    x = np.random.default_rng(0).standard_normal((64, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), dense])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    reach, never = (compare_activations.Convergence(x, y, t, every=2) for t in (0.0, 1.1))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[reach, never])
    assert reach.loss_before == pytest.approx(before["loss"], rel=1e-4)
    assert reach.steps_to_target == 0 and never.steps_to_target is None
    assert never.step == 8 and len(never.seconds) == 2


def test_positive_fractions_in_both_modes_leave_batch_norm_as_it_is():
    model = models.build_cnn("relu", filters=(4,), dense_units=6)
    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.non_trainable_variables]
    inference = compare_activations.positive_fractions(model, x, training=False)
    training = compare_activations.positive_fractions(model, x, training=True)
    after = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    assert [len(training[name]) for name in ("act1", "act2")] == [4, 6]
    # Batch statistics centre each channel, so about half of each is positive in training
    # mode; inference mode uses the fresh moving statistics (mean 0, variance 1) instead.
    assert all(0.2 < f < 0.8 for f in training["act1"])
    assert inference["act1"] != training["act1"]
    act1 = keras.Model(model.inputs[0], model.get_layer("act1").input)(x)
    expected = np.mean(keras.ops.convert_to_numpy(act1) > 0, axis=(0, 1, 2))
    np.testing.assert_allclose(inference["act1"], expected)


# ## The experiment


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
    argv = _tiny(tmp_path, "--variants", "prelu", "--slope-lr-scale", "10", "--eval-every", "1")
    results = compare_activations.main(argv)
    saved = _strict_json(tmp_path / "results.json")
    assert saved == results and saved["pending"] == []
    config = saved["config"]
    assert config["learning_rates"] == [1e-3] and config["samples"]["val"] == 32
    assert config["command"].startswith("python -m examples.compare_activations --epochs 2")
    groups = [(g["phase"], g["variant"], g["slope_lr_scale"]) for g in saved["runs"]]
    assert groups == [("eval", "prelu", 1.0), ("eval", "prelu", 10.0)]  # one candidate: no tuning
    run = saved["runs"][0]["seeds"][0]
    assert len(saved["runs"][0]["seeds"]) == 2 and run["diverged_at"] is None
    assert 0 <= run["test_accuracy"] <= 1 and len(run["history"]["val_accuracy"]) == 2
    assert len(run["seconds_per_epoch"]) == 2 and min(run["seconds_per_epoch"]) > 0
    assert run["steps"] == 4 and run["loss_before_training"] > 0
    assert list(run["slopes"]) == ["act1", "act2", "act3", "act4"]
    assert saved["runs"][1]["seeds"][0]["slope_moved"] > run["slope_moved"] > 0  # c = 10: farther
    # The library's DeadUnitMonitor and the positive fractions agree on dead units.
    inference = activation_report.fractions(run)
    assert inference.size == 16 + 32 + 64 + 64
    assert run["history"]["dead_units"][-1] == pytest.approx(np.mean(inference == 0))
    assert {(e["c"], e["measure"]) for e in saved["comparisons"]} == {
        (10.0, m) for m in activation_report.SLOPE_MEASURES
    }
    assert saved["tests"] == 3 and saved["equivalence_tests"] == 1
    report = (tmp_path / "report.md").read_text()
    headings = ["## The tests", "## Summary", "## The choice on validation data"]
    headings += ["## Paired comparisons", "## Positive fractions", "## Learned slopes"]
    for heading in headings:
        assert heading in report
    assert "This report makes 3 such tests" in report
    assert "at least 7 seeds all differ in one direction" in report  # 3 * 2 / 2**7 < 0.05
    assert "this run has fewer, so it resolves none" in report
    assert (
        "| – | slope moved (mean abs) | PReLU (one slope per layer): c = 10, init 0.25 − base |"
        in report
    )
    for figure in activation_report.FIGURES:
        assert (tmp_path / figure).stat().st_size > 0 and f"]({figure})" in report
    assert (tmp_path / "logs" / "eval_dNone_prelu_lr0.001_s0.25_c10_seed1.csv").exists()
    for path in [tmp_path / "results.json", tmp_path / "report.md", tmp_path / "curves.png"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # 0666 less the umask
    summary = capsys.readouterr().out
    accuracy = np.mean([run["test_accuracy"] for run in saved["runs"][0]["seeds"]])
    assert "test accuracy" in summary and f"{100 * accuracy:.2f} ± " in summary
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
    assert "| – | PReLU (one slope per layer) | 1e+10 | 0.25 | diverged: seeds [0] |" in report
    printed = capsys.readouterr().out
    assert "eval_dNone_prelu_lr1e+10_s0.25, c = 1, seed 0: loss " in printed  # one line per run


def _fake_run(setting, seed, data, args):
    """What train_once returns, made up. Validation accuracy is best at 1e-3 (and, for
    LeakyReLU, at slope 0.1); test accuracy is best at 1e-2. PReLU is 2 pp above ReLU in
    every seed; LeakyReLU equals ReLU; ReLU has 10% dead units, the others none."""
    variant, rate, epochs = setting["variant"], setting["learning_rate"], args.epochs
    gain = 0.02 if variant == "prelu" else 0.0
    val = (0.9 if rate == 1e-3 else 0.8) + (0.01 if setting["slope"] == 0.1 else 0.0)
    dead = 0.1 if variant == "relu" else 0.0
    history = {
        "loss": [1.0 - gain] * epochs, "accuracy": [0.9] * epochs,
        "val_loss": [0.5] * epochs, "val_accuracy": [val + gain + 0.001 * (seed % 1000)] * epochs,
        "dead_units/act1": [dead] * epochs, "dead_units": [dead] * epochs,
    }  # fmt: skip
    fractions = {"act1": [0.0] * int(10 * dead) + [0.5] * (10 - int(10 * dead))}
    return {
        "seed": seed, "diverged_at": None, "history": history, "steps": 8,
        "test_accuracy": (0.95 if rate == 1e-2 else 0.9) + gain + 0.001 * seed,
        "test_loss": 0.3, "seconds_per_epoch": [1.0] * epochs, "loss_before_training": 2.3,
        "steps_to_target": None if variant == "relu" else 4 + seed % 2,
        "dead_units_before_training": {"dead_units/act1": 0.0, "dead_units": 0.0},
        "positive_fraction": {"inference": fractions, "training": fractions},
        "slopes": {}, "slope_moved": None,
    }  # fmt: skip


def test_settings_are_chosen_on_validation_and_tests_are_counted_and_corrected(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(compare_activations, "train_once", _fake_run)
    monkeypatch.setattr(activation_report, "figures", lambda results: {})
    argv = _tiny(tmp_path, "--variants", "relu,leaky_relu,prelu", "--seeds", "10")
    argv += ["--learning-rates", "1e-2", "1e-3", "--leaky-slopes", "0.1", "0.5"]
    results = compare_activations.main(argv + ["--tune-seeds", "2"])
    tuned = [g for g in results["runs"] if g["phase"] == "tune"]
    assert len(tuned) == 2 + 4 + 2 and {r["seed"] for g in tuned for r in g["seeds"]} == {
        1000,
        1001,
    }
    main = activation_report.main_groups(results, None)
    assert main["prelu"]["learning_rate"] == 1e-3  # not 1e-2, where test accuracy is higher
    assert (main["leaky_relu"]["learning_rate"], main["leaky_relu"]["slope"]) == (1e-3, 0.1)
    assert [r["seed"] for r in main["relu"]["seeds"]] == list(range(10))
    # 3 pairs x 4 measures, Holm-corrected together; 3 equivalence tests of accuracy.
    assert results["tests"] == 12 and results["equivalence_tests"] == 3
    verdicts = {(e["a"], e["b"], e["measure"]): e for e in results["comparisons"]}
    gain = verdicts["prelu", "relu", "test_accuracy"]
    assert gain["differences"] == pytest.approx([0.02] * 10)  # both at 1e-3, seed by seed
    assert gain["p"] == 2 / 2**10 and gain["p_holm"] == pytest.approx(12 * 2 / 2**10)
    assert gain["verdict"] == "higher"
    assert verdicts["leaky_relu", "relu", "test_accuracy"]["verdict"] == "equivalent within ±0.5 pp"
    assert verdicts["prelu", "relu", "dead_end"]["verdict"] == "lower"
    assert verdicts["prelu", "leaky_relu", "dead_end"]["verdict"] == "not resolved"
    assert verdicts["prelu", "relu", "steps_to_target"]["differences"][:2] == [-5, -4]
    report = (tmp_path / "report.md").read_text()
    assert "| – | PReLU (one slope per layer) | 0.001 | 0.25 | **92.05 ± 0.07%** |" in report
    assert "| – | LeakyReLU (best fixed slope) | 0.001 | 0.1 | **91.05 ± 0.07%** |" in report
    assert "This report makes 12 such tests" in report and "10 did not" in report
    assert "at least 9 seeds" in report and "resolves none" not in report
    assert "| – | ReLU | inference | 10.0% | 0.0% | 0.0% | 0.0% | 90.0% |" in report


def test_an_existing_out_is_refused_and_an_interrupt_keeps_finished_variants(
    tmp_path, monkeypatch, capsys
):
    def interrupted(setting, *args):
        if setting["variant"] == "prelu":
            raise KeyboardInterrupt
        return _fake_run(setting, *args)

    monkeypatch.setattr(compare_activations, "train_once", interrupted)
    monkeypatch.setattr(activation_report, "figures", lambda results: {})
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, "--variants", "relu,prelu"))
    assert exit_info.value.code == 130
    assert f"Interrupted: {tmp_path} keeps relu (depth None)." in capsys.readouterr().err
    saved = _strict_json(tmp_path / "results.json")
    assert saved["pending"] == [[None, "prelu"]] and [g["variant"] for g in saved["runs"]] == [
        "relu"
    ]
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
        (["--depth", "4"], "--depth and --widths: only with --model plain"),
    ],
)
def test_bad_options_name_the_option(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, *argv))
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_failed_download_names_the_offline_datasets(tmp_path, capsys, monkeypatch):
    def offline():
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(SystemExit) as exit_info:
        compare_activations.main(_tiny(tmp_path, "--dataset", "fashion_mnist"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no network" in err
    assert "digits and mnist5k need no download" in err


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


def test_mnist5k_is_real_28x28_digits_split_offline_and_stratified():
    data = compare_activations.load_dataset("mnist5k")
    assert {key: len(x) for key, (x, _) in data.items()} == {
        "train": 3500,
        "val": 500,
        "test": 1000,
    }
    x, y = data["test"]
    assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0
    assert (
        np.bincount(y).tolist() == [100] * 10 and np.bincount(data["val"][1]).tolist() == [50] * 10
    )


def test_default_slopes_are_the_library_default_and_a_grid_for_leaky_relu():
    args = compare_activations.build_parser().parse_args([])
    assert args.slope_init == [keras_prelu.DEFAULT_SLOPE] and args.seeds == 4
    assert (
        args.leaky_slopes == [0.01, 0.1, 0.25, 0.5]
        and keras_prelu.DEFAULT_SLOPE in args.leaky_slopes
    )
