"""One generated step of every network of scalar_reference (softmax, dot, sums,
reciprocals, 1x1 products, custom activations, coupled state blocks) against
PyTorch autograd of H*, at random states, costates, weights and hyperparameters.

Jacobi (scheme 'local'): every gradient at step k and the weights move with the
old p_w; for networks without states also 'nonlocal', where they use the new p_w.
"""

import numpy as np
import pytest
import torch

import hamsym as hs
from scalar_reference import NETWORKS, names_of, random_values
from test_derive_torch import TORCH, torch_hamiltonian

CASES = [(n, "local") for n in sorted(NETWORKS)] + \
        [(n, "nonlocal") for n in sorted(NETWORKS) if not NETWORKS[n]().of_kind("state")]


@pytest.mark.parametrize("name,scheme", CASES)
def test_generated_step_matches_autograd(name, scheme, load):
    net = NETWORKS[name]()
    system = hs.derive(net)
    mod = load(system, name=f"net_{name}", scheme=scheme)
    values = random_values(names_of(net), seed=5)
    values["flip"] = -1.0
    hyper = {k: values[k] for k in ("gamma", "beta", "theta", "theta_neurons", "flip", "delta")}
    hyper.update({q.name: values[q.name] for q in net.of_kind("param")})
    def flat(v):                              # vectors are 1-D in generated code
        return np.asarray(v).reshape(-1) if np.ndim(v) == 2 and 1 in np.shape(v) else v

    states, weights = net.of_kind("state"), net.of_kind("weight")
    hl = mod.Integrator(weights={w.name: flat(values[w.name]) for w in weights},
                        states={x.name: flat(values[x.name]) for x in states}, **hyper)
    for v in states + weights:
        hl.costates[v.name][...] = flat(values[f"p_{v.name}"])
    data = [flat(values[d.name]) for d in net.of_kind("input") + net.of_kind("target")]

    H, T = torch_hamiltonian(name, net, values)
    variables = states + weights
    grads = torch.autograd.grad(H, [T[v.name] for v in variables])
    loss, dynamics, _ = TORCH[name](T)
    s, d = hyper["flip"], hyper["delta"]
    got_loss = hl.step(*data)

    assert abs(got_loss - loss.item()) < 1e-12
    for v, g in zip(variables, grads):
        p = values[f"p_{v.name}"]
        theta = hyper["theta_neurons" if v.kind == "state" else "theta"]
        p_new = (1 + s * theta) * p - d * s * g.detach().numpy()
        if v.kind == "state":
            new = values[v.name] + d * dynamics[v.name].detach().numpy()
            got = hl.states[v.name]
        else:
            new = values[v.name] - d * hyper["beta"] * (p if scheme == "local" else p_new)
            got = hl.weights[v.name]
        np.testing.assert_allclose(got, flat(new), rtol=0, atol=1e-12, err_msg=v.name)
        np.testing.assert_allclose(hl.costates[v.name], flat(p_new), rtol=0, atol=1e-12,
                                   err_msg="p_" + v.name)
