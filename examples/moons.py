"""Two interleaving half-moons, separated by a small MLP; the decision boundary is drawn.

The data are made here with numpy (no download): two noisy half circles, one
inside the other's curve.  A 2-16-16-1 network with tanh hidden units learns
to tell them apart from the logits with the stable binary cross-entropy, and
Adam.  The picture shows the learned probability over the plane and the
points on top: the classic sight of a tiny framework at work.

Run:  python examples/moons.py --out docs/images      (add --help for the options)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn


def make_moons(
    n: int = 200, noise: float = 0.1, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on two half circles (class 0 on the upper, 1 on the lower), with noise."""
    rng = rng if rng is not None else np.random.default_rng(0)
    n0 = n // 2
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0.0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    order = rng.permutation(n)
    return x[order], y[order]


def make_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    )


def main(
    epochs: int = 300,
    n: int = 200,
    lr: float = 0.02,
    seed: int = 0,
    out_dir: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train full-batch on ``n`` points; draw the boundary into ``out_dir`` when given.

    Returns the final loss, the training accuracy, the losses per epoch and
    the path of the picture (None without ``out_dir``).
    """
    cr.manual_seed(seed)
    x_np, y_np = make_moons(n, rng=np.random.default_rng(seed))
    x, y = cr.Tensor(x_np), cr.Tensor(y_np.reshape(-1, 1))
    model = make_model()
    opt = cr.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for epoch in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not quiet and (epoch + 1) % max(epochs // 10, 1) == 0:
            print(f"epoch {epoch + 1:4d}  loss {losses[-1]:.4f}")
    with cr.no_grad():
        accuracy = float(((model(x).data[:, 0] > 0) == (y_np > 0.5)).mean())
    if not quiet:
        print(f"training accuracy {accuracy:.3f}")
    picture = None
    if out_dir is not None:
        picture = draw_boundary(model, x_np, y_np, os.path.join(out_dir, "moons.png"))
        if not quiet:
            print(f"wrote {picture}")
    return {"loss": losses[-1], "losses": losses, "accuracy": accuracy, "picture": picture}


def draw_boundary(model: nn.Module, x: np.ndarray, y: np.ndarray, path: str) -> str:
    """Plot the model's probability of class 1 over the plane, with the data on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    with cr.no_grad():
        prob = model(cr.Tensor(grid)).sigmoid().data.reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=80)
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu", alpha=0.8)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu", edgecolors="k", s=18)
    ax.set_title("two moons: a 2-16-16-1 MLP's decision boundary")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--n", type=int, default=200, help="number of points")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for moons.png")
    args = parser.parse_args(argv)
    main(epochs=args.epochs, n=args.n, lr=args.lr, seed=args.seed, out_dir=args.out)


if __name__ == "__main__":
    cli()
