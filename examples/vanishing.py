"""Vanishing gradients, seen: a deep sigmoid network against the same network with ReLU.

Both networks have ten hidden layers of 32 units, start from the same
weights (normal, variance 2 / fan_in, zero biases) and learn the same task:
tell the points inside a circle from those outside it, from 256 points made
here with numpy.  Only the activation differs.  At every step of plain
gradient descent, ``chainrule.nn.utils.grad_norms`` measures the gradient
of each layer's weights, and ``plot_grad_flow`` draws them.

Backpropagation multiplies the gradient, layer by layer on its way to the
input, by the activation's derivative.  The sigmoid's is at most 1/4, so
in the sigmoid network the first layer's gradient is several orders of
magnitude below the last layer's and the first layers barely move; the
network never gets past predicting the share of points inside the circle.
ReLU's derivative is 1 wherever a unit is active, the gradient keeps its
size through the layers, and that network learns the circle.

Run:  python examples/vanishing.py --out out      (add --help for the options)
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def make_circle(
    n: int = 256, radius: float = 0.7, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform in the square [-1, 1]^2, labelled 1 inside the circle, else 0."""
    rng = rng if rng is not None else np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = (np.hypot(x[:, 0], x[:, 1]) < radius).astype(np.float64)
    return x, y


def make_model(activation: str, depth: int = 10, width: int = 32, seed: int = 1) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units and one output; weights from ``seed``.

    The same seed gives the same weights whatever the activation, so the two
    networks differ in nothing else.
    """
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    fan_in = 2
    for _ in range(depth):
        layer = nn.Linear(fan_in, width, generator=rng)
        nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / fan_in), generator=rng)
        nn.init.zeros_(layer.bias)
        layers += [layer, ACTIVATIONS[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1, generator=rng))
    return nn.Sequential(*layers)


def weight_names(model: nn.Sequential) -> list[str]:
    """The weights of the Linear layers, first to last (``0.weight``, ``2.weight``, ...)."""
    return [name for name, _ in model.named_parameters() if name.endswith("weight")]


def train(
    activation: str, steps: int, depth: int, lr: float, x: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """Full-batch gradient descent, recording every parameter's gradient norm at each step."""
    model = make_model(activation, depth)
    opt = cr.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    xs, ys = cr.Tensor(x), cr.Tensor(y.reshape(-1, 1))
    history, losses = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        history.append(nn.utils.grad_norms(model))
        opt.step()
        losses.append(loss.item())
    names = weight_names(model)
    first = np.array([h[names[0]] for h in history])
    last = np.array([h[names[-1]] for h in history])
    return {"model": model, "history": history, "losses": losses, "ratio": first / last}


def main(
    steps: int = 300,
    depth: int = 10,
    lr: float = 0.1,
    out_dir: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train both networks and draw their gradient norms into ``out_dir`` when given.

    Returns, for "sigmoid" and "relu", the per-step gradient norms
    (``history``), the losses and ``ratio``: the first layer's weight
    gradient norm over the last layer's, at each step; and the picture's path.
    """
    x, y = make_circle(rng=np.random.default_rng(0))
    runs = {name: train(name, steps, depth, lr, x, y) for name in ACTIVATIONS}
    if not quiet:
        for name, run in runs.items():
            ratio = run["ratio"]
            print(
                f"{name:8s} |grad first layer| / |grad last layer|: {ratio[0]:.1e} at the start, "
                f"{np.median(ratio):.1e} over training (median); "
                f"loss {run['losses'][0]:.3f} -> {run['losses'][-1]:.3f}"
            )
    picture = None
    if out_dir is not None:
        picture = draw(runs, os.path.join(out_dir, "vanishing.png"))
        if not quiet:
            print(f"wrote {picture}")
    return {**runs, "picture": picture}


def draw(runs: dict[str, dict[str, Any]], path: str) -> str:
    """Gradient norms over training for each network, and per layer at the first step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=80)
    for ax, (name, run) in zip(axes, runs.items()):
        nn.utils.plot_grad_flow(
            run["history"],
            ax,
            names=weight_names(run["model"]),
            title=f"{name}: weight gradient norm per layer",
        )
    low = min(min(ax.get_ylim()) for ax in axes[:2])
    high = max(max(ax.get_ylim()) for ax in axes[:2])
    for ax in axes[:2]:
        ax.set_ylim(low, high)  # one scale, so the two panels compare at a glance
    profile = axes[2]
    for name, run in runs.items():
        names = weight_names(run["model"])
        profile.plot(range(len(names)), [run["history"][0][n] for n in names], "o-", label=name)
    profile.set_yscale("log")
    profile.set_xlabel("layer (0 = next to the input)")
    profile.set_ylabel("gradient norm")
    profile.set_title("at the first step, layer by layer")
    profile.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--depth", type=int, default=10, help="number of hidden layers")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--out", default=".", help="folder for vanishing.png")
    args = parser.parse_args(argv)
    main(steps=args.steps, depth=args.depth, lr=args.lr, out_dir=args.out)


if __name__ == "__main__":
    cli()
