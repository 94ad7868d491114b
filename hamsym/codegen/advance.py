"""The state advance: the neuron states one Euler step ahead, swept in the order the
step of the module's scheme sweeps them, with no costate and no weight moving.

Integrator.predict runs the forward kernel and this one at every row of an input
stream: the network running on its own, as run() would run it if nothing learned.
The sweep is each unit's forward sweep from the step (``_UnitLowering.state_tasks``);
new values go to ``_n_<state>`` buffers and are committed at the end, so what a unit
reads of another unit's states is their step-k value, as in the step.
"""

from __future__ import annotations

import re
from collections import Counter

from ..declare.expr import Var
from .per_weight import hyper_scalars
from ..declare.rewrite import substitute, walk
from .lower import Lowering, count_uses, float_prologue
from .step import Kernel, _UnitLowering, new


def lower_advance(system, schedule, units, taken=()):
    """(Kernel "_advance", {buffer: storage shape}) for the units of the module's step.
    Its temporaries are numbered past the names in taken (the forward kernel's buffers,
    which predict passes next to these)."""
    net = system.net
    counter = Counter()
    for name in taken:
        m = re.fullmatch(r"_([a-z]+)(\d+)", name)
        if m:
            counter[m.group(1)] = max(counter[m.group(1)], int(m.group(2)) + 1)
    tasks = []
    for unit in units:
        lowering = _UnitLowering(system, schedule, unit, units, "", counter)
        # other units' states are read from the published step-k copies in the step; here
        # they are read in place, which holds step-k values until the commit
        published = {box: x for x, box in lowering.foreign.items()}
        tasks += [(name, substitute(e, published)) for name, e in lowering.state_tasks()[1]]
    low = Lowering(count_uses([e for _, e in tasks], {}), counter)
    for name, e in tasks:                   # the commit reads these buffers by name
        low.store(e, name)
    states = net.of_kind("state")
    if states:
        low.emit("# -- commit the states")
    for x in states:
        def body(i, j, depth, x=x):
            low.emit(f"{low.ref(x.name, x.shape, i, j)} = {low.ref(new(x).name, x.shape, i, j)}",
                     depth)
        low._loops(x.shape, body)
    reads = {v.name for _, e in tasks for v in walk(e) if isinstance(v, Var)}
    args = [v.name for v in net.of_kind("weight") + net.of_kind("input") if v.name in reads]
    scalars = hyper_scalars(system) + [q.name for q in net.of_kind("param")]
    args += [x.name for x in states] + scalars + list(low.buffers)
    prologue = tuple(float_prologue(args, low.lines, set(scalars)))
    return Kernel("_advance", args, low.lines, False, prologue=prologue), dict(low.buffers)
