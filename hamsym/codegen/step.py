"""One Euler step of Hamiltonian Learning, lowered to kernels (docs/mathematics.md,
sections 5 and 6).

Each unit (see ``units``) gets two kernels:

- ``emit_<unit>``: the messages dH_U/dx it sends to other units' states, from
  step-k values (its own arrays and the state vectors the others published);
- ``update_<unit>``: its loss terms, then its states, costates and weights.

``step`` publishes the state vectors other units read, runs every emit, then
every update. Nothing in an update reads another unit's arrays, only the
published vectors and the messages, so units could run on separate processes.

Inside an update, derivatives are taken

- Jacobi (scheme 'local'): at the step-k values, and weights move with the old p_w
  (with fresh_weight_costate, with the new p_w: still all derivatives at step k);
- Gauss-Seidel (schemes 'nonlocal', 'partial'): with the newest values, over the
  strongly connected components of the unit's state dependency graph
  (``schedule.components``): states are swept forward component by component
  (each reads the already updated components before it, and step-k values of its
  own), costates backward (each reads all updated states and the costates of the
  components after it), then the weights, which move with their new p_w.

New values go to ``_n_<name>`` buffers and are committed at the end, so every
read sees the version the scheme asks for. Weights update in place, fused with
their costate, reading their gradient by index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..declare import expr as E
from ..declare.expr import Var
from ..declare.network import HYPER
from ..declare.rewrite import expand, substitute, walk
from . import per_weight
from .lower import (Lowering, ReadAfterWrite, count_uses, evaluated_children, float_prologue,
                    lit, storage_shape)
from .schedule import components
from .units import partition

_AX, _DS = (Var(n, (), "hyper") for n in ("_ax", "_ds"))    # locals every kernel defines
DELTA = HYPER["delta"]


@dataclass(frozen=True)
class Kernel:
    name: str
    args: list           # parameter names, in order
    lines: list          # body
    returns_loss: bool
    parallel: bool = False   # some loop runs on all threads (numba.prange)
    prologue: tuple = ()     # opening lines: the float type _F and scalars in it (float_prologue)


@dataclass(frozen=True)
class StepCode:
    kernels: list        # Kernel, emits first
    driver: list         # body of step()
    buffers: dict        # every work buffer: name -> storage shape
    units: list


def new(v):
    return Var(f"_n_{v.name}", v.shape, "new")


def outbox(x):
    return Var(f"_k_{x.name}", x.shape, "outbox")


def inbox(src, x):
    # unit names join state names with '__', which declared names may not contain,
    # so the last '__' separates the receiving state: names are unique
    return Var(f"_m_{src.name}__{x.name}", x.shape, "inbox")


def _elementwise_reads(e, known):
    """(Var, transposed) pairs that e reads by index, outside stored buffers."""
    out, stack, seen = [], [(e, False)], set()
    while stack:
        node, transposed = stack.pop()
        if (node, transposed) in seen or node in known:
            continue
        seen.add((node, transposed))
        if isinstance(node, Var):
            out.append((node, transposed))
        else:
            flip = isinstance(node, E.Transpose)
            stack.extend((c, transposed ^ flip) for c in evaluated_children(node, known))
    return out


class _UnitLowering:
    """Builds the two kernels of one unit."""

    def __init__(self, system, schedule, unit, units, prefix, counter, threads=None):
        self.system, self.schedule, self.unit, self.prefix = system, schedule, unit, prefix
        self.threads = threads          # Lowering's threads threshold (None: one thread)
        self.counter = counter          # numbers temporaries module-wide
        self.shared = {}
        self._expanded = {}            # names expanded once, reused by every view
        net = system.net
        self.net = net
        self.table = {net.vars[n]: e for n, e in net.instants.items()}
        self.table.update({m: e for m, e in unit.messages})
        own = set(unit.states)
        self.foreign = {x: outbox(x) for x in net.of_kind("state") if x not in own}
        self.inboxes = {x: [inbox(v, x) for v in units if x in v.outgoing] for x in unit.states}

    def view(self, e, versions=None):
        """e with names expanded, foreign states read from their published vectors,
        and the given own variables read in their new version."""
        e = substitute(expand(e, self.table, self._expanded), self.foreign)
        return substitute(e, versions) if versions else e

    # -- emit -----------------------------------------------------------------------------
    def emit_kernel(self):
        tasks = [(inbox(self.unit, x).name, self.view(e)) for x, e in self.unit.outgoing.items()]
        if not tasks:
            return None, {}
        low = Lowering(count_uses([e for _, e in tasks], {}), self.counter, self.threads)
        for name, e in tasks:
            low.store(e, name)
        outputs = [n for n, _ in tasks]
        # what the emit stored (a pre-activation, say) holds step-k values: the
        # update kernel reads it instead of computing it again
        self.shared = {e: n for e, n in low.known.items() if n in low.buffers and n not in outputs}
        return self._kernel(f"emit_{self.unit.name}", low, [e for _, e in tasks], False,
                            outputs=outputs)

    # -- update ---------------------------------------------------------------------------
    def state_tasks(self):
        """The forward sweep of the unit's states: (components, [(new-state buffer name,
        expression)], versions it leaves). Gauss-Seidel between components, Jacobi inside
        one: a component reads the versions as they were before it (Jacobi: one
        component, all step-k values)."""
        u, jacobi = self.unit, self.schedule.scheme == "local"
        comps = [u.states] if jacobi else components(self.net, u.states)
        tasks, versions = [], {}                         # (buffer name, expression)
        for comp in comps:
            before = None if jacobi else dict(versions)
            for x in comp:
                step = E.add(x, E.scale(DELTA, self.net.dynamics_of[x.name]))
                tasks.append((new(x).name, self.view(step, before)))
            versions.update((x, new(x)) for x in comp)
        return comps, tasks, versions

    def update_kernel(self):
        u, sched, p = self.unit, self.schedule, self.system.costates
        jacobi = sched.scheme == "local"
        incoming = {x: E.add(u.own[x], *self.inboxes[x]) for x in u.states}

        def new_costate(x, versions):
            g = self.view(incoming[x], versions)
            return E.add(E.scale(_AX, p[x]), E.neg(E.scale(_DS, g)))

        comps, tasks, versions = self.state_tasks()      # forward sweep
        for comp in reversed(comps):                     # backward sweep
            before = None if jacobi else dict(versions)
            for x in reversed(comp):
                tasks.append((new(p[x]).name, new_costate(x, before)))
            versions.update((p[x], new(p[x])) for x in comp)
        grads = {w: self.view(u.own[w], None if jacobi else versions) for w in u.weights}
        loss = self.view(u.loss) if u.loss is not None else None

        instants = [(self.prefix + n, self.view(d)) for n, d in self.net.instants.items()]
        roots = [e for _, e in tasks] + list(grads.values()) + ([loss] if loss is not None else [])
        used = set()
        for r in roots:
            used.update(walk(r))
        instants = [(n, d) for n, d in instants if d in used]
        messages = [(self.prefix + m.name, self.view(e)) for m, e in u.messages]
        messages = [(n, e) for n, e in messages if e in used and not isinstance(e, Var)]
        named = [d for _, d in instants] + [e for _, e in messages]
        plan = (tasks, grads, loss, instants, messages, named, roots, jacobi)
        try:
            low = self._lower_update(plan, fuse_messages=True)
        except ReadAfterWrite:             # the fused order would read an updated weight
            low = self._lower_update(plan, fuse_messages=False)
        return self._kernel(f"update_{u.name}", low, roots + named, True)

    def _fusable_messages(self, messages, tasks, loss, instants, grads):
        """Messages W.T @ v (W a matrix of this unit) needed only by other weights'
        gradients: computed inside W's update pass, which reads W anyway."""
        early = set()
        for e in [e for _, e in tasks] + [d for _, d in instants] + ([loss] if loss else []):
            early.update(walk(e))
        out = {}
        for name, e in messages:
            if not (isinstance(e, E.MatMul) and isinstance(e.args[0], E.Transpose)):
                continue
            w = e.args[0].args[0]
            if w in grads and 1 not in w.shape and e not in early and \
                    e not in walk(grads[w]) and e not in walk(e.args[1]):
                out[e] = (name, w)
        return out

    def _lower_update(self, plan, fuse_messages):
        tasks, grads, loss, instants, messages, named, roots, jacobi = plan
        fused = self._fusable_messages(messages, tasks, loss, instants, grads) \
            if fuse_messages else {}
        low = Lowering(count_uses(named + roots, set(named)), self.counter, self.threads)
        for e, name in self.shared.items():           # stored by this unit's emit kernel
            low.known[e] = name
            low.buffers[name] = storage_shape(e.shape)
        low.emit("# -- forward: instantaneous neurons and loss, at step k")
        for name, d in instants:
            low.materialize(d, name=name)
        low.emit(f"_loss = {low.materialize(loss, name='_l') if loss is not None else lit(0.0)}")
        if any(e not in fused for _, e in messages):
            low.emit("# -- backward messages dH/dh, at step k")
        for name, e in messages:
            if e not in fused:
                low.materialize(e, name=name)
        if self.unit.states:
            low.emit("# -- states forward, then costates backward, into new buffers")
        for name, e in tasks:               # the commit reads these buffers by name
            low.store(e, name)
        self._weights(low, grads, jacobi, fused)
        self._commit(low)
        return low

    def _weights(self, low, grads, jacobi, fused):
        """Weight updates, one pass per weight: p_w and w together, the gradient read
        by index. With fused messages, a weight whose pass also computes a message
        W.T @ v goes before the weights that need it (top layer first), and what
        depends on a message is stored only once the message is there."""
        u, p, sched = self.unit, self.system.costates, self.schedule
        if not u.weights:
            return
        made_by = {w: [(m, name) for m, (name, mw) in fused.items() if mw == w] for w in u.weights}
        inside = {w: set(walk(grads[w])) for w in u.weights} if fused else {}
        needs_of = {w: {mw for m, (_, mw) in fused.items() if m in inside[w]} for w in inside}
        order, done = [], set()
        while len(order) < len(u.weights):
            for w in u.weights:
                needs = needs_of.get(w, set())
                if w not in done and needs <= done | {w}:
                    order.append(w)
                    done.add(w)
                    break
            else:
                raise ReadAfterWrite("messages and weights depend on each other")
        # what a gradient needs is stored before any weight moves, except what waits
        # for a fused message: that is stored right before its weight's pass
        low.pending = set(fused)
        for w in order:
            low.prepare(grads[w])
            low.hoist(grads[w])
        earlier = set()
        for w in order:
            stored = set(low.known) | low.pending      # pending messages will be buffers
            clash = any((v in earlier) or (v in (w, p[w]) and tr)
                        for v, tr in _elementwise_reads(grads[w], stored))
            if clash and fused:
                raise ReadAfterWrite(w.name)
            if clash:
                low.materialize(grads[w], name=f"_g_{w.name}")
            earlier.update((w, p[w]))
        low.emit("# -- weights: costate and weight in one pass" +
                 (", messages to the layer below on the way" if fused else ""))
        for w in order:
            if fused:                   # store now what waited for an earlier pass
                low.pending -= {m for m in fused if fused[m][1] in low.frozen}
                low.prepare(grads[w])
                low.hoist(grads[w])
            for m, _ in made_by[w]:
                low.operand(m.args[1])
            for m, name in made_by[w]:
                low.buffer(name, m.shape)
                low.emit(f"for _j in range({m.shape[0]}):")
                low.emit(f"{name}[_j] = 0.0", 1)

            def body(i, j, depth, w=w):
                pre = []
                grad = low.at(grads[w], i, j, pre)
                for line in pre:
                    low.emit(line, depth)
                pw, ww = low.ref(p[w].name, w.shape, i, j), low.ref(w.name, w.shape, i, j)
                if made_by[w]:
                    low.emit(f"_w = {ww}", depth)
                for m, name in made_by[w]:      # W.T @ v, from the old W
                    low.emit(f"{name}[{j}] += _w * {low.at(m.args[1], i, '0', [])}", depth)
                own = f"_{w.name}" if w.name in self.system.per_weight else ""
                low.emit(f"_p = _aw{own} * {pw} - _ds{own} * {grad}", depth)
                old = "_w" if made_by[w] else ww
                stale = jacobi and not sched.fresh_weight_costate
                low.emit(f"{ww} = {old} - _db{own} * {pw if stale else '_p'}", depth)
                low.emit(f"{pw} = {'0.0' if sched.reset_weight_costate else '_p'}", depth)
            size = w.shape[0] * w.shape[1]
            if made_by[w]:              # sums over rows: threads take blocks of columns
                low.column_blocks(w.shape, body, size)
            else:
                low._loops(w.shape, body, size)
            for m, name in made_by[w]:
                low.known[m] = name
            low.frozen.update((w, p[w]))
        low.pending, low.frozen = set(), set()

    def _commit(self, low):
        u, p = self.unit, self.system.costates
        if not u.states:
            return
        low.emit("# -- commit states and costates")
        for x in u.states:
            def body(i, j, depth, x=x):
                low.emit(f"{low.ref(x.name, x.shape, i, j)} = {low.ref(new(x).name, x.shape, i, j)}",
                         depth)
                value = "0.0" if self.schedule.reset_neuron_costate else \
                    low.ref(new(p[x]).name, x.shape, i, j)
                low.emit(f"{low.ref(p[x].name, x.shape, i, j)} = {value}", depth)
            low._loops(x.shape, body)

    # -- signature ----------------------------------------------------------------------------
    def _kernel(self, name, low, exprs, returns_loss, outputs=()):
        reads = set()
        for e in exprs:
            reads.update(v.name for v in walk(e) if isinstance(v, Var))
        u, p = self.unit, self.system.costates
        own = [v.name for x in u.states for v in (x, p[x])] + \
              [v.name for w in u.weights for v in (w, p[w])]
        if not returns_loss:                 # emit kernels only read their own arrays
            own = [n for n in own if n in reads]
        published = sorted(v.name for v in self.foreign.values() if v.name in reads)
        received = [b.name for x in u.states for b in self.inboxes[x] if b.name in reads]
        data = [v.name for v in self.net.of_kind("input") + self.net.of_kind("target")
                if v.name in reads]
        params = [v.name for v in self.net.of_kind("param") if v.name in reads]
        shared = set(self.shared.values()) if returns_loss else set()
        work = [b for b in low.buffers if b not in outputs and (b not in shared or b in low.read)]
        hyper = per_weight.hyper_scalars(self.system)
        args = own + published + received + data + hyper + params + work + list(outputs)
        prologue = float_prologue(args, low.lines, set(hyper) | set(params), coefficients=True)
        if returns_loss:            # the unit's weights with their own hyperparameters
            prologue[5:5] = [           # after _F and the global coefficients
                line for w in u.weights if w.name in self.system.per_weight
                for line in per_weight.coefficients(w.name)]
        return Kernel(name, args, low.lines, returns_loss, low.threaded, tuple(prologue)), dict(low.buffers)


def _merge_buffers(buffers, new, kernel):
    """Add a kernel's work buffers to the module's. A name may recur only for a buffer
    an emit kernel stores for its unit's update kernel, always with the same shape."""
    for name, shape in new.items():
        if buffers.setdefault(name, shape) != shape:
            raise AssertionError(f"hamsym bug: work buffer {name} of {kernel} has shape {shape}, "
                                 f"another kernel's has {buffers[name]}")


def lower_step(system, schedule, threads=None):
    units = partition(system, schedule)
    multi = len(units) > 1
    kernels, buffers, driver = [], {}, []
    counter = Counter()
    lowerings = [_UnitLowering(system, schedule, u, units, f"_{u.name}__" if multi else "", counter,
                               threads) for u in units]
    published = {}
    for lw in lowerings:
        kernel, bufs = lw.emit_kernel()
        if kernel is not None:
            kernels.append(kernel)
            _merge_buffers(buffers, bufs, kernel.name)
    updates = []
    for lw in lowerings:
        kernel, bufs = lw.update_kernel()
        updates.append(kernel)
        _merge_buffers(buffers, bufs, kernel.name)
    kernels += updates
    for k in kernels:
        for a in k.args:
            if a.startswith("_k_"):
                published[a] = system.net.vars[a[3:]]
    if published:
        driver.append("# publish the state vectors other units read (step-k values)")
    for name, x in sorted(published.items()):
        shape = buffers[name] = storage_shape(x.shape)
        # a loop, not name[:] = x: Numba's slice copy needs its reference counting,
        # which the kernels are compiled without
        index = ", ".join(f"_i{d}" for d in range(len(shape)))
        for d, n in enumerate(shape):
            driver.append("    " * d + f"for _i{d} in range({n}):")
        driver.append("    " * len(shape) + f"{name}[{index}] = {x.name}[{index}]")
    driver.append("_loss = 0.0")
    for k in kernels:
        call = f"{k.name}({', '.join(k.args)})"
        driver.append(f"_loss += {call}" if k.returns_loss else call)
    return StepCode(kernels=kernels, driver=driver, buffers=buffers, units=units)
