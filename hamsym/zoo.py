"""Ready-made declarations of common networks (each is plain use of `Network`)."""

from __future__ import annotations

from . import activations as A
from .expr import softmax_cross_entropy, sum_squares
from .network import Network


def mlp(sizes, activations=A.tanh, *, loss="squared", name="mlp", bias=True):
    """A feed-forward network of instantaneous layers, sizes = [n_in, ..., n_out].

    activations: one activation for every hidden layer, or a list (one per hidden
    layer); the output layer is linear. loss: "squared" (|o - y|^2 / 2) or
    "cross_entropy" (softmax cross-entropy against target scores y).
    """
    if len(sizes) < 2:
        raise ValueError("mlp needs at least input and output sizes")
    hidden = len(sizes) - 2
    acts = list(activations) if isinstance(activations, (list, tuple)) else [activations] * hidden
    if len(acts) != hidden:
        raise ValueError(f"{hidden} hidden layers but {len(acts)} activations")
    net = Network(name)
    h = net.input("u", sizes[0])
    y = net.target("y", sizes[-1])
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        z = net.weight(f"W{layer}", (n_out, n_in)) @ h
        if bias:
            z = z + net.weight(f"b{layer}", n_out)
        last = layer == len(sizes) - 1
        h = net.instant("o" if last else f"h{layer}", z if last else acts[layer - 1](z))
    if loss == "squared":
        net.loss(sum_squares(h - y) / 2)
    elif loss == "cross_entropy":
        net.loss(softmax_cross_entropy(h, y))
    else:
        raise ValueError(f"unknown loss {loss!r}; use 'squared' or 'cross_entropy'")
    return net
