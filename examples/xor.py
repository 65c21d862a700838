"""XOR, the smallest problem a straight line cannot solve, learned by two logistic units.

A 2-2-1 network of sigmoid ("logistic") units is trained with mean squared
error and plain gradient descent with momentum on the four XOR points.  No
single line separates XOR's classes, so the hidden layer has to bend the
input space first.

Run:  python examples/xor.py            (add --help for the options)
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0], [0.0]])


class XorNet(nn.Module):
    """Two inputs, two logistic hidden units, one logistic output."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 2)
        self.output = nn.Linear(2, 1)

    def forward(self, x: Any) -> cr.Tensor:
        return self.output(self.hidden(x).sigmoid()).sigmoid()


def main(epochs: int = 1000, lr: float = 2.0, seed: int = 1, quiet: bool = False) -> dict[str, Any]:
    """Train on the four XOR points; returns the final loss, predictions and losses per epoch."""
    cr.manual_seed(seed)
    model = XorNet()
    opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.MSELoss()
    x, y = cr.Tensor(X), cr.Tensor(Y)
    losses = []
    for epoch in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not quiet and (epoch + 1) % max(epochs // 10, 1) == 0:
            print(f"epoch {epoch + 1:5d}  loss {losses[-1]:.6f}")
    with cr.no_grad():
        pred = model(x).data
    if not quiet:
        for xi, yi, pi in zip(X, Y, pred):
            print(f"  {xi.astype(int)} -> {pi[0]:.3f}  (target {int(yi[0])})")
    return {"loss": losses[-1], "losses": losses, "predictions": pred, "model": model}


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    main(epochs=args.epochs, lr=args.lr, seed=args.seed)


if __name__ == "__main__":
    cli()
