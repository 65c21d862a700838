"""Handwritten digits: an MLP classifier on scikit-learn's bundled 8x8 digits (no download).

1797 images of 8x8 pixels are split into training and test sets.  A
64-64-10 network with a ReLU hidden layer is trained with softmax
cross-entropy and Adam in mini-batches; a progress bar over the epochs shows
the running loss.  Afterwards the script draws the loss and accuracy curves,
saves a checkpoint of the model and the optimizer, loads it into a fresh
model and checks that the predictions are identical.

Run:  python examples/digits.py --out docs/images      (add --help for the options)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn


def load_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test splits (80/20, stratified), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return x_tr, x_te, y_tr, y_te


class MLP(nn.Module):
    """64 pixels -> ``hidden`` ReLU units -> 10 class scores (logits)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = nn.Linear(64, hidden)
        self.output = nn.Linear(hidden, 10)

    def forward(self, x: Any) -> cr.Tensor:
        return self.output(self.hidden(x).relu())


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with cr.no_grad():
        return float((model(cr.Tensor(x)).data.argmax(axis=1) == y).mean())


def main(
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 3e-3,
    hidden: int = 64,
    seed: int = 0,
    out_dir: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train, evaluate, draw the curves and round-trip a checkpoint.

    Returns the test accuracy, the per-epoch history, whether the reloaded
    model predicts exactly as the trained one, and the written files.
    """
    from tqdm import tqdm

    cr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_tr, x_te, y_tr, y_te = load_data(seed)
    model = MLP(hidden)
    opt = cr.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    bar = tqdm(range(epochs), desc="digits", unit="epoch", disable=quiet)
    for _ in bar:
        model.train()
        order = rng.permutation(len(x_tr))
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(cr.Tensor(x_tr[idx])), y_tr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        model.eval()
        history["loss"].append(total / count)
        history["train_acc"].append(accuracy(model, x_tr, y_tr))
        history["test_acc"].append(accuracy(model, x_te, y_te))
        bar.set_postfix(loss=f"{total / count:.4f}", test_acc=f"{history['test_acc'][-1]:.3f}")
    bar.close()
    test_acc = history["test_acc"][-1]
    if not quiet:
        print(f"test accuracy {test_acc:.4f} on {len(y_te)} images")

    folder = out_dir if out_dir is not None else tempfile.mkdtemp(prefix="digits-")
    os.makedirs(folder, exist_ok=True)
    checkpoint = os.path.join(folder, "digits.npz")
    cr.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epochs}, checkpoint
    )
    restored = MLP(hidden)
    state = cr.load(checkpoint)
    restored.load_state_dict(state["model"])
    with cr.no_grad():
        before = model(cr.Tensor(x_te)).data
        after = restored(cr.Tensor(x_te)).data
    identical = bool(np.array_equal(before, after))
    if not quiet:
        print(f"checkpoint {checkpoint}: reloaded model predicts identically: {identical}")

    picture = None
    if out_dir is not None:
        picture = draw_curves(history, os.path.join(out_dir, "digits.png"))
        if not quiet:
            print(f"wrote {picture}")
    return {
        "test_accuracy": test_acc,
        "history": history,
        "identical": identical,
        "checkpoint": checkpoint,
        "picture": picture,
    }


def draw_curves(history: dict[str, list[float]], path: str) -> str:
    """Training loss (left) and train/test accuracy (right) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    left.plot(epochs, history["loss"], color="C0")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (cross-entropy)")
    left.set_yscale("log")
    right.plot(epochs, history["train_acc"], label="train", color="C1")
    right.plot(epochs, history["test_acc"], label="test", color="C2")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend(loc="lower right")
    fig.suptitle("digits: 64-64-10 MLP, Adam, mini-batches of 32")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for digits.png and digits.npz")
    args = parser.parse_args(argv)
    main(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        hidden=args.hidden,
        seed=args.seed,
        out_dir=args.out,
    )


if __name__ == "__main__":
    cli()
