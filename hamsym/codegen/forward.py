"""The forward kernel: every instantaneous neuron (a layer's output, a readout) at
the current weights and states, for given inputs. It changes nothing, so a user
can read what the network computes, e.g. a generator's output while it runs free.

Instants that read a target are left out: they are part of a loss, not of what
the network computes.
"""

from __future__ import annotations

from ..declare.expr import Var
from ..declare.rewrite import expand, walk
from .lower import Lowering, count_uses, float_prologue
from .per_weight import hyper_scalars
from .step import Kernel


def lower_forward(system, threads=None):
    """(Kernel, {instant name: output buffer name}, {buffer: storage shape})."""
    net = system.net
    table = {net.vars[n]: e for n, e in net.instants.items()}
    memo = {}
    defs = [(n, expand(e, table, memo)) for n, e in net.instants.items()
            if not any(v.kind == "target" for v in net.leaves(e))]
    low = Lowering(count_uses([d for _, d in defs], {d for _, d in defs}), threads=threads)
    outputs = {}
    for name, d in defs:
        outputs[name] = low.materialize(d, name=f"_out_{name}")
    reads = {v.name for _, d in defs for v in walk(d) if isinstance(v, Var)}
    args = [v.name for v in net.of_kind("weight") + net.of_kind("state") + net.of_kind("input")
            if v.name in reads]
    scalars = hyper_scalars(system) + [q.name for q in net.of_kind("param")]
    args += scalars + list(low.buffers)
    prologue = tuple(float_prologue(args, low.lines, set(scalars)))
    return Kernel("forward", args, low.lines, False, low.threaded, prologue), outputs, dict(low.buffers)

