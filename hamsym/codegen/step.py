"""One Euler step of Hamiltonian Learning, lowered to loops (HL.md section 3).

Order inside the step, all derivatives at the step-k values:

1. forward: instantaneous neurons, state dynamics f_x, the loss;
2. backward: messages dH/dh (last layer first), state gradients dH/dx;
3. weights: one fused loop per weight updates p_w and w together, reading the
   gradient (an outer product, usually) by index without storing it;
4. states and their costates: x+ = x + delta f_x, p_x+ = (1 + flip theta_neurons) p_x
   - delta flip dH/dx.

Weights go before states because their gradients may read x and p_x by index.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import expr as E
from .lower import Lowering, count_uses, evaluated_children


@dataclass(frozen=True)
class StepCode:
    lines: list          # body of the step function
    buffers: dict        # work buffer name -> storage shape


def _elementwise_reads(e, known):
    """Vars that e reads by index (outside what is already stored in buffers)."""
    out, stack, seen = [], [(e, False)], set()
    while stack:
        node, transposed = stack.pop()
        if (node, transposed) in seen or node in known:
            continue
        seen.add((node, transposed))
        if isinstance(node, E.Var):
            out.append((node, transposed))
        else:
            flip = isinstance(node, E.Transpose)
            stack.extend((c, transposed ^ flip) for c in evaluated_children(node, known))
    return out


def lower_step(system, schedule):
    net = system.net
    weights, states = net.of_kind("weight"), net.of_kind("state")
    instants = [(net.vars[n], e) for n, e in net.instants.items()]
    named = {e: v for v, e in instants}
    f = {x: net.dynamics_of[x.name] for x in states}
    g = system.gradients
    roots = [e for _, e in instants] + list(f.values()) + [net.loss_expr] + \
        [e for _, e in system.messages] + [g[v] for v in states + weights]
    low = Lowering(count_uses(roots, named))
    emit = low.emit

    emit("# -- forward: instantaneous neurons, dynamics, loss")
    for v, e in instants:
        low.known[v] = low.materialize(e, name=v.name)
    f_name = {x: low.materialize(f[x], name=f"_f_{x.name}") for x in states}
    emit(f"_loss = {low.materialize(net.loss_expr, name='_l')}")

    emit("# -- backward: messages dH/dh, gradients dH/dx")
    for m, e in system.messages:
        low.known[m] = low.materialize(e, name=m.name)
    g_name = {x: low.materialize(g[x], name=f"_g_{x.name}") for x in states}

    # a weight gradient is read by index inside the update loop unless it reads
    # another weight (updated earlier in the step) or its own weight transposed
    inline = {}
    for w in weights:
        low.prepare(g[w])
        reads = _elementwise_reads(g[w], low.known)
        clash = any(v.kind in ("weight", "costate") and (v != w or tr) and v != system.costates[w]
                    for v, tr in reads)
        inline[w] = not clash
        if clash:
            low.materialize(g[w], name=f"_g_{w.name}")

    emit("# -- weights: costate and weight in one pass")
    for w in weights:
        p = system.costates[w]
        new_w = "_p" if schedule.weights_use_new_costate else None

        def body(i, j, depth, w=w, p=p, new_w=new_w):
            pre = []
            grad = low.at(g[w], i, j, pre)
            for line in pre:
                emit(line, depth)
            pw, ww = low.ref(p.name, p.shape, i, j), low.ref(w.name, w.shape, i, j)
            emit(f"_p = _aw * {pw} - _ds * {grad}", depth)
            emit(f"{ww} -= _db * {new_w or pw}", depth)
            emit(f"{pw} = {'0.0' if schedule.reset_weight_costate else '_p'}", depth)
        low._loops(w.shape, body)

    if states:
        emit("# -- neuron states and their costates")
    for x in states:
        p = system.costates[x]
        fx, gx = f_name[x], g_name[x]
        reset = schedule.reset_neuron_costate

        def body(i, j, depth, x=x, p=p, fx=fx, gx=gx, reset=reset):
            emit(f"{low.ref(x.name, x.shape, i, j)} += delta * {low.ref(fx, x.shape, i, j)}", depth)
            new_p = "0.0" if reset else \
                f"_ax * {low.ref(p.name, p.shape, i, j)} - _ds * {low.ref(gx, x.shape, i, j)}"
            emit(f"{low.ref(p.name, p.shape, i, j)} = {new_p}", depth)
        low._loops(x.shape, body)
    return StepCode(lines=low.lines, buffers=dict(low.buffers))
