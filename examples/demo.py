"""A short tour of the engine: the 2-2-2 network from Values, then from Tensors.

Run with ``make demo`` (or ``python examples/demo.py`` with chainrule installed).
"""

from __future__ import annotations

import numpy as np

import chainrule as cr


def scalar_network() -> dict[str, cr.Value]:
    """The classic 2-2-2 logistic network, one Value per number."""
    v = {k: cr.Value(x, name=k) for k, x in {
        "i1": 0.05, "i2": 0.10,
        "w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30,
        "w5": 0.40, "w6": 0.45, "w7": 0.50, "w8": 0.55,
        "b1": 0.35, "b2": 0.60,
    }.items()}  # fmt: skip
    out_h1 = (v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"]).sigmoid()
    out_h2 = (v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"]).sigmoid()
    out_o1 = (v["w5"] * out_h1 + v["w6"] * out_h2 + v["b2"]).sigmoid()
    out_o2 = (v["w7"] * out_h1 + v["w8"] * out_h2 + v["b2"]).sigmoid()
    e_total = 0.5 * (0.01 - out_o1) ** 2 + 0.5 * (0.99 - out_o2) ** 2
    e_total.name = "E_total"
    v["E_total"] = e_total
    return v


def tensor_network() -> tuple[cr.Tensor, cr.Tensor, cr.Tensor]:
    """The same network with weight matrices."""
    w_hidden = cr.Tensor([[0.15, 0.20], [0.25, 0.30]], requires_grad=True, name="W_hidden")
    w_output = cr.Tensor([[0.40, 0.45], [0.50, 0.55]], requires_grad=True, name="W_output")
    x = cr.Tensor([0.05, 0.10], name="x")
    hidden = (w_hidden @ x + 0.35).sigmoid()
    out = (w_output @ hidden + 0.60).sigmoid()
    e_total = 0.5 * ((cr.Tensor([0.01, 0.99]) - out) ** 2).sum()
    return e_total, w_hidden, w_output


def main() -> None:
    v = scalar_network()
    v["E_total"].backward()
    print(f"E_total = {v['E_total'].data:.9f}")
    for k in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"):
        print(f"  dE_total/d{k} = {v[k].grad:+.9f}")

    e_total, w_hidden, _ = tensor_network()
    e_total.backward()
    scalar = np.array([[v[f"w{i}"].grad for i in (1, 2)], [v[f"w{i}"].grad for i in (3, 4)]])
    print(f"Tensor build: E_total = {e_total.item():.9f}")
    print("  max |difference| of hidden-weight gradients:", np.abs(w_hidden.grad - scalar).max())

    x = cr.Tensor([0.3, -1.2], requires_grad=True)
    print("gradcheck of tanh(x * x).sum():", cr.gradcheck(lambda t: (t * t).tanh().sum(), [x]))


if __name__ == "__main__":
    main()
