"""Ready-made declarations of common networks (each is plain use of `Network`)."""

from __future__ import annotations

from . import activations as A
from .reductions import mse, softmax_cross_entropy, sum_squares
from .network import Network


def _regression_loss(o, y, loss):
    """|o - y|^2 / 2 ("squared") or the mean of (o - y)^2 ("mse", PyTorch's F.mse_loss)."""
    if loss == "squared":
        return sum_squares(o - y) / 2
    if loss == "mse":
        return mse(o, y)
    raise ValueError(f"unknown loss {loss!r}; use 'squared' or 'mse'")


def _per_layer(activations, layers):
    acts = list(activations) if isinstance(activations, (list, tuple)) else [activations] * layers
    if len(acts) != layers:
        raise ValueError(f"{layers} layers but {len(acts)} activations")
    return acts


def mlp(sizes, activations=A.tanh, *, loss="squared", name="mlp", bias=True):
    """A feed-forward network of instantaneous layers, sizes = [n_in, ..., n_out].

    activations: one activation for every hidden layer, or a list (one per hidden
    layer); the output layer is linear. loss: "squared" (|o - y|^2 / 2), "mse" (the
    mean of (o - y)^2, PyTorch's F.mse_loss) or "cross_entropy" (softmax cross-entropy
    against target scores y).
    """
    if len(sizes) < 2:
        raise ValueError("mlp needs at least input and output sizes")
    acts = _per_layer(activations, len(sizes) - 2)
    net = Network(name)
    h = net.input("u", sizes[0])
    y = net.target("y", sizes[-1])
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        z = net.weight(f"W{layer}", (n_out, n_in)) @ h
        if bias:
            z = z + net.weight(f"b{layer}", n_out)
        last = layer == len(sizes) - 1
        h = net.instant("o" if last else f"h{layer}", z if last else acts[layer - 1](z))
    if loss == "cross_entropy":
        net.loss(softmax_cross_entropy(h, y))
    elif loss in ("squared", "mse"):
        net.loss(_regression_loss(h, y, loss))
    else:
        raise ValueError(f"unknown loss {loss!r}; use 'squared', 'mse' or 'cross_entropy'")
    return net


def _readout_loss(net, h, n_out, bias, loss):
    y = net.target("y", n_out)
    o = net.weight("C", (n_out, h.shape[0])) @ h
    if bias:
        o = o + net.weight("c", n_out)
    net.loss(_regression_loss(net.instant("o", o), y, loss))


def delay_network(sizes, activations=A.tanh, *, loss="squared", name="delay"):
    """Layered delay network (docs/mathematics.md, section 7): layer l is a state
    block with f_l = (sigma_l(W_l x_{l-1} + b_l) - x_l) / delta, so an Euler step of
    size delta gives x_l+ = sigma_l(W_l x_{l-1} + b_l): one layer per step. x_0 is the
    input u; the loss is |x_L - y|^2 / 2 (loss="mse": the mean of (x_L - y)^2).
    activations: one for all layers or one per layer."""
    acts = _per_layer(activations, len(sizes) - 1)
    net = Network(name)
    x = net.input("u", sizes[0])
    y = net.target("y", sizes[-1])
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        W, b = net.weight(f"W{layer}", (n_out, n_in)), net.weight(f"b{layer}", n_out)
        state = net.state(f"x{layer}", n_out)
        net.dynamics(state, (acts[layer - 1](W @ x + b) - state) / net.delta)
        x = state
    net.loss(_regression_loss(x, y, loss))
    return net


def recurrent(n_in, n_hidden, n_out, *, kind="discrete", activation=A.tanh, bias=True,
              tau=1.0, loss="squared", name="rnn"):
    """A recurrent block with a linear readout o = C x (+ c) and loss |o - y|^2 / 2
    (loss="mse": the mean of (o - y)^2).

    kind="discrete":   x+ = sigma(A x + B u + b)            (delay form, one step per step)
    kind="continuous": x' = (-x + sigma(A x + B u + b)) / tau  (a leaky integrator; tau is
                       the param `tau`, so tau=1 is x' = -x + sigma(A x + B u + b))
    """
    net = Network(name)
    u = net.input("u", n_in)
    x = net.state("x", n_hidden)
    z = net.weight("A", (n_hidden, n_hidden)) @ x + net.weight("B", (n_hidden, n_in)) @ u
    if bias:
        z = z + net.weight("b", n_hidden)
    if kind == "discrete":
        net.dynamics(x, (activation(z) - x) / net.delta)
    elif kind == "continuous":
        net.dynamics(x, (activation(z) - x) / net.param("tau", tau))
    else:
        raise ValueError(f"kind must be 'discrete' or 'continuous', not {kind!r}")
    _readout_loss(net, x, n_out, bias, loss)
    return net


def oscillator_bank(n, n_out=1, *, loss="squared", name="oscillators"):
    """The authors' state-space generator (docs/mathematics.md, sections 6.5 and 7):
    n rotation blocks d/dt (a_k, b_k) = [[0, w_k], [-w_k, 0]] (a_k, b_k) with learnable
    frequencies w, read out as o = Ca a + Cb b, loss |o - y|^2 / 2 (loss="mse": the
    mean of (o - y)^2, the authors' choice); there is no input, the bank runs on its
    own state (start it on the unit circle: states={"a": ones}).

    The rotation is linear in the state, so it is integrated exactly (zero-order
    hold): the dynamics are declared in delay form, f = (R(w delta) s - s) / delta, and
    one Euler step of size delta is then the exact rotation by w delta. Give the
    initial frequencies as the weight w (radians per unit time).
    """
    net = Network(name)
    y = net.target("y", n_out)
    a, b = net.state("a", n), net.state("b", n)
    w = net.weight("w", n)
    c, s = A.cos(w * net.delta), A.sin(w * net.delta)
    net.dynamics(a, (c * a + s * b - a) / net.delta)
    net.dynamics(b, (c * b - s * a - b) / net.delta)
    o = net.instant("o", net.weight("Ca", (n_out, n)) @ a + net.weight("Cb", (n_out, n)) @ b)
    net.loss(_regression_loss(o, y, loss))
    return net
