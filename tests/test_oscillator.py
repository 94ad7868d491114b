"""The authors' oscillator bank (docs/mathematics.md, section 7) learns to
generate a sum of two sines from a stream, with their settings: the mean squared
error (PyTorch's F.mse_loss, hs.mse), gamma = 1, theta = 0.2, beta = 0.01,
delta = 0.1, weights moving with the previous p_w (scheme 'local').

Eight oscillators start on a grid of frequencies 0.02..0.14 that misses the target
frequencies; the test checks that the frequencies lock onto them and that the bank,
free-running after training (weights frozen, only its own state), matches the next
1000 steps of the signal.
"""

import warnings

import numpy as np
import pytest

import hamsym as hs
from hamsym.declare.zoo import oscillator_bank

DELTA, N, TRAIN = 0.1, 8, 60_000


@pytest.mark.parametrize("f1, f2", [(0.045, 0.078), (0.061, 0.095)])
def test_oscillator_bank_learns_a_sum_of_sines(f1, f2, load):
    system = hs.derive(oscillator_bank(N, loss="mse"), gamma=1.0, beta=0.01, theta=0.2, delta=DELTA)
    mod = load(system, name="oscillators", scheme="local")
    t = np.arange(TRAIN + 1000) * DELTA
    y = (np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t + 0.3))[:, None]
    grid = 2 * np.pi * np.linspace(0.02, 0.14, N)
    bank = mod.Integrator(weights={"w": grid, "Ca": np.zeros((1, N)), "Cb": np.zeros((1, N))},
                          states={"a": np.ones(N)})
    assert np.abs(grid[:, None] / (2 * np.pi) - [f1, f2]).min(axis=0).max() > 3e-3
    bank.run(y[:TRAIN])

    learned = bank.weights["w"] / (2 * np.pi)
    assert np.abs(learned[:, None] - [f1, f2]).min(axis=0).max() < 5e-4, learned

    bank.hyper["beta"] = 0.0                       # free-running: nothing learns any more
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses = bank.run(y[TRAIN:])
    mse = np.mean(losses)                          # loss = (o - y)^2 at each step
    assert mse < 0.2, mse                          # measured 4e-8 and 3e-4
