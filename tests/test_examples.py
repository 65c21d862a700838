"""The examples run (shortened) and still do what they promise, so they cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def xor():
    return _load("xor")


@pytest.fixture(scope="module")
def moons():
    pytest.importorskip("matplotlib")
    return _load("moons")


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    return _load("digits")


def test_xor_is_solved_by_logistic_units(xor):
    result = xor.main(epochs=600, quiet=True)
    assert np.array_equal(result["predictions"] > 0.5, xor.Y > 0.5)
    assert result["loss"] < 0.01 < result["losses"][0]
    hidden = result["model"].hidden
    assert hidden.weight.name == "hidden.weight"


def test_xor_cli(xor, capsys):
    xor.cli(["--epochs", "20"])
    assert "epoch    20" in capsys.readouterr().out


def test_moons_learns_a_boundary_and_draws_it(moons, tmp_path):
    result = moons.main(epochs=150, n=120, out_dir=str(tmp_path), quiet=True)
    assert result["accuracy"] >= 0.95
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    picture = Path(result["picture"])
    assert picture.parent == tmp_path and picture.read_bytes()[:8] == PNG


def test_make_moons_gives_two_balanced_classes(moons):
    x, y = moons.make_moons(101, noise=0.0, rng=np.random.default_rng(0))
    assert x.shape == (101, 2) and sorted(np.unique(y)) == [0.0, 1.0]
    upper = x[y == 0]
    # Noise-free, the first moon lies on the unit circle's upper half.
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert np.all(upper[:, 1] >= 0)


def test_moons_cli(moons, tmp_path, capsys):
    moons.cli(["--epochs", "3", "--n", "40", "--out", str(tmp_path)])
    assert (tmp_path / "moons.png").exists()
    assert "training accuracy" in capsys.readouterr().out


def test_digits_short_run_trains_checkpoints_and_plots(digits, tmp_path):
    result = digits.main(epochs=3, out_dir=str(tmp_path), quiet=True)
    assert result["test_accuracy"] > 0.85
    history = result["history"]
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert result["identical"]
    assert Path(result["checkpoint"]).parent == tmp_path
    assert (tmp_path / "digits.png").read_bytes()[:8] == PNG


def test_digits_full_run_reaches_96_percent(digits, tmp_path):
    result = digits.main(out_dir=str(tmp_path), quiet=True)
    assert result["test_accuracy"] >= 0.96


def test_digits_cli(digits, tmp_path, capsys):
    digits.cli(["--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "predicts identically: True" in out


def test_demo_tour_agrees_between_value_and_tensor_builds(capsys):
    demo = _load("demo")
    demo.main()
    printed = capsys.readouterr().out
    assert "gradcheck of tanh(x * x).sum(): True" in printed
    v = demo.scalar_network()
    v["E_total"].backward()
    e_total, w_hidden, w_output = demo.tensor_network()
    e_total.backward()
    assert abs(e_total.item() - v["E_total"].data) < 1e-15
    scalar = [[v["w1"].grad, v["w2"].grad], [v["w3"].grad, v["w4"].grad]]
    np.testing.assert_allclose(w_hidden.grad, scalar, rtol=0, atol=1e-15)
    scalar = [[v["w5"].grad, v["w6"].grad], [v["w7"].grad, v["w8"].grad]]
    np.testing.assert_allclose(w_output.grad, scalar, rtol=0, atol=1e-15)


@pytest.fixture(scope="module")
def vanishing():
    pytest.importorskip("matplotlib")
    return _load("vanishing")


def test_vanishing_gradients_show_in_sigmoid_and_not_in_relu(vanishing, tmp_path):
    result = vanishing.main(steps=80, out_dir=str(tmp_path), quiet=True)
    sig, relu = result["sigmoid"], result["relu"]
    layers = vanishing.weight_names(sig["model"])
    assert layers == vanishing.weight_names(relu["model"]) and len(layers) == 11
    # At the first step, layer by layer from the input: the sigmoid network's
    # weight gradients grow at every layer and span many orders of magnitude;
    # ReLU's stay within a small factor of each other.
    sig_start = np.array([sig["history"][0][n] for n in layers])
    relu_start = np.array([relu["history"][0][n] for n in layers])
    assert np.all(np.diff(sig_start) > 0)
    assert sig_start[-1] / sig_start[0] > 1e5
    assert relu_start.max() / relu_start.min() < 1e2
    # The first layer's gradient over the last layer's, at every step.
    assert sig["ratio"][0] < 1e-5 and np.all(sig["ratio"] < 0.2)
    assert relu["ratio"][0] > 1e3 * sig["ratio"][0]
    assert np.median(relu["ratio"]) > 0.1
    # So the ReLU network learns the circle, and the sigmoid network stays at the
    # loss of predicting the share of points inside it for every point.
    _, y = vanishing.make_circle(rng=np.random.default_rng(0))
    share = y.mean()
    base_rate = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    assert abs(sig["losses"][-1] - base_rate) < 0.01
    assert relu["losses"][-1] < 0.5 * relu["losses"][0] and relu["losses"][-1] < 0.5 * base_rate
    picture = Path(result["picture"])
    assert picture.parent == tmp_path and picture.read_bytes()[:8] == PNG


def test_vanishing_cli(vanishing, tmp_path, capsys):
    vanishing.cli(["--steps", "3", "--depth", "4", "--out", str(tmp_path)])
    assert (tmp_path / "vanishing.png").read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert "sigmoid" in out and "relu" in out and "at the start" in out
