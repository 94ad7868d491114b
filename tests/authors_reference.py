"""The step of the authors' HL optimizer, written from its equations in PyTorch float64
(not from their code): what each of its switches does to one Euler step.

With H = gamma * loss + sum_x <p_x, f_x>, flip s, dissipation theta, step delta:

- neurons run locally, always: x+ = x + delta f(x, w), p_x+ = (1 + s theta) p_x
  - delta s dH/dx, every derivative at step k (Jacobi);
- weight costates: p_w+ = (1 + s theta) p_w - delta s dH/dw, at step k;
- weights: w+ = w - delta beta p_w with the old p_w when local=True, with the new
  p_w+ when local=False;
- reset_neuron_costate / reset_weight_costate: p_x+ / p_w+ set to zero after the step.

A network is given as f(x, w, u) -> {state: f_x} and loss(x, w, u, y); u is None for
a network without inputs. Used by tests/test_authors_flags.py.
"""

import torch

torch.set_default_dtype(torch.float64)


def _grad(fn, at):
    at = {k: v.detach().clone().requires_grad_(True) for k, v in at.items()}
    value = fn(at)
    grads = torch.autograd.grad(value, list(at.values()), allow_unused=True)
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(at.items(), grads)}


def authors_step(net, hyper, flags, x, p, w, pw, u, y):
    """One step; returns (loss at step k, x+, p_x+, w+, p_w+)."""
    f, loss = net
    s, d, beta, gamma = hyper["flip"], hyper["delta"], hyper["beta"], hyper["gamma"]
    ax = aw = 1 + s * hyper["theta"]

    def H(xx, ww):
        fx = f(xx, ww, u)
        return gamma * loss(xx, ww, u, y) + sum((p[k] * fx[k]).sum() for k in fx)

    gx = _grad(lambda xx: H(xx, w), x) if x else {}
    gw = _grad(lambda ww: H(x, ww), w)
    fx = f(x, w, u)
    x_new = {k: x[k] + d * fx[k] for k in x}
    p_new = {k: ax * p[k] - d * s * gx[k] for k in x}
    pw_new = {k: aw * pw[k] - d * s * gw[k] for k in w}
    moves = pw if flags["local"] else pw_new
    w_new = {k: w[k] - d * beta * moves[k] for k in w}
    if flags["reset_neuron_costate"]:
        p_new = {k: torch.zeros_like(v) for k, v in p_new.items()}
    if flags["reset_weight_costate"]:
        pw_new = {k: torch.zeros_like(v) for k, v in pw_new.items()}
    return float(loss(x, w, u, y)), x_new, p_new, w_new, pw_new


def authors_run(net, hyper, flags, x, p, w, pw, U, Y):
    """len(Y) steps; returns (losses, x, p_x, w, p_w) after them."""
    losses = []
    for k in range(len(Y)):
        u = None if U is None else torch.as_tensor(U[k])
        loss, x, p, w, pw = authors_step(net, hyper, flags, x, p, w, pw, u, torch.as_tensor(Y[k]))
        losses.append(loss)
    return losses, x, p, w, pw
