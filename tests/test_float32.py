"""A float32 learner computes in float32: the compiled kernels widen nothing to float64.

A float64 literal or scalar in float32 code makes Numba promote the whole expression,
and LLVM then converts every element of a loop to float64 and back: slower than
float64 itself on networks that fit in cache. The LLVM IR of the compiled float32
kernels shows what they do. (That they compute the right numbers is
tests/test_random_networks.py's float32 check.)"""

import collections
import re

import numpy as np
import pytest

import hamsym as hs
from conftest import numba_cache_beside_module


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    net = hs.Network("f32_ops")
    u, y = net.input("u", 5), net.target("y", 3)
    W1, b1 = net.weight("W1", (40, 5)), net.weight("b1", 40)
    W2, W3, W4 = net.weight("W2", (33, 40)), net.weight("W3", (20, 33)), net.weight("W4", (3, 20))
    h1 = net.instant("h1", hs.tanh(W1 @ u + b1))
    h2 = net.instant("h2", hs.sigmoid(W2 @ h1))
    h3 = net.instant("h3", hs.softplus(W3 @ h2))
    net.loss(hs.sum_squares(W4 @ h3 - y) / 2)
    # a fresh folder and Numba's cache beside it, so the kernels are compiled here (not
    # loaded from a cache) and can be inspected
    with numba_cache_beside_module():
        mod = hs.load(hs.derive(net, theta=0.3), tmp_path_factory.mktemp("f32") / "f32_ops.py",
                      threads=False)
    learner = mod.Integrator(seed=0, dtype="float32")
    learner.run(np.zeros((2, 5), np.float32), np.zeros((2, 3), np.float32))
    learner.forward(np.zeros(5, np.float32))
    return mod


def float_ops(kernel):
    """{(operation, lanes, type): count} of the float instructions in kernel's IR."""
    (signature,) = kernel.signatures
    ir = kernel.inspect_llvm(signature)
    return collections.Counter((op, int(lanes or 1), kind) for op, lanes, kind in re.findall(
        r"= (fmul|fadd|fsub|fdiv|fpext|fptrunc) (?:<(\d+) x )?(double|float)", ir))


@pytest.mark.parametrize("kernel", ["update_net", "forward"])
def test_float32_kernels_do_float32_arithmetic(learner, kernel):
    ops = float_ops(getattr(learner, kernel))
    assert any(kind == "float" and lanes >= 8 for _, lanes, kind in ops)       # vectorised
    assert not [k for k in ops if k[2] == "double" and k[1] > 1], ops          # no float64 vectors
    # float64: only the step's coefficients (1 + s theta, delta s, delta beta), once per call
    scalar = sum(n for (op, _, kind), n in ops.items() if kind == "double" and op != "fptrunc")
    assert scalar <= 4, ops
    # widened: at most the loss the CPython wrapper boxes
    assert ops[("fpext", 1, "float")] <= 1 and not [k for k in ops if k[0] == "fpext" and k[1] > 1]
