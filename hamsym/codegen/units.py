"""Units of computation: which layers update together (docs/mathematics.md, section 6).

A unit owns some neuron states (its layers), the weights their dynamics use, and
the loss terms that read its states. Its local Hamiltonian is

    H_U = sum_{x in U} p_x . f_x + gamma * (loss terms of U)

and, since H = sum_U H_U, the gradient of H with respect to a state x of U is
dH_U/dx plus the *messages* dH_V/dx sent by the other units V. A unit therefore
needs from the others only their state vectors and these messages: this is the
whole interface between layers in the local scheme, and what a distributed run
would exchange.

- nonlocal: one unit holding everything;
- local:    one unit per state block (a network without states is one unit); blocks
            that share a weight form one unit, since a weight has one owner (in the
            local scheme this changes nothing: every update reads step-k values);
- partial:  the user's groups of state blocks (a weight shared by two groups is refused).

Loss terms (the terms of the loss as a sum) belong to the unit of the last-declared
state they read; a term that reads no state, to the unit of a weight it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..declare import expr as E
from ..derive.chain import gradients
from ..declare.expr import DeclarationError, Var
from ..declare.network import HYPER


@dataclass
class Unit:
    name: str
    states: list
    weights: list = field(default_factory=list)
    loss: object = None                  # gamma-free sum of owned loss terms, or None
    own: dict = field(default_factory=dict)       # var -> dH_U/dvar, for own states and weights
    outgoing: dict = field(default_factory=dict)  # other unit's state -> dH_U/dstate (a message)
    messages: list = field(default_factory=list)  # backward messages dH_U/dh of instants

    def __repr__(self):
        return f"Unit({self.name}: states {[x.name for x in self.states]}, " \
               f"weights {[w.name for w in self.weights]})"


def _reads(expr, net):
    """The states and weights expr depends on, instants looked through."""
    return {v for v in net.leaves(expr) if v.kind in ("state", "weight")}


def _loss_terms(loss):
    """The loss as a flat list of terms: sums are split and scalings distributed over
    them, at any depth (2 + c*(a + b) gives 2, c*a, c*b)."""
    if isinstance(loss, E.Add):
        return [t for a in loss.args for t in _loss_terms(a)]
    if isinstance(loss, E.Scale):
        terms = _loss_terms(loss.args[1])
        if len(terms) > 1:
            return [E.scale(loss.args[0], t) for t in terms]
    return [loss]


def partition(system, schedule):
    net = system.net
    states, weights = net.of_kind("state"), net.of_kind("weight")
    if schedule.scheme == "nonlocal" or not states:
        blocks = [list(states)]
    elif schedule.scheme == "local":
        blocks = [[x] for x in states]
    else:
        blocks = _groups(net, schedule.groups)
    while True:
        units = [Unit(_unit_name(b, k, schedule), b) for k, b in enumerate(blocks)]
        clash = _assign(net, units)
        if clash is None:
            break
        w, names = clash
        if schedule.scheme != "local":
            raise DeclarationError(
                f"scheme {schedule.scheme!r}: weight {w.name!r} is used by groups "
                f"{[list(x.name for x in u.states) for u in units if u.name in names]}; "
                "a weight belongs to one group: put those states in one group")
        # In the local scheme every update reads step-k values, so which layers form a
        # unit does not change the step: layers that share a weight are merged.
        merged = [x for u in units if u.name in names for x in u.states]
        blocks = [b for b, u in zip(blocks, units) if u.name not in names] + [merged]
        order = {x: i for i, x in enumerate(states)}
        blocks = sorted((sorted(b, key=order.get) for b in blocks), key=lambda b: order[b[0]])

    gamma = HYPER["gamma"]
    for u in units:
        seeds = [(net.dynamics_of[x.name], system.costates[x]) for x in u.states]
        if u.loss is not None:
            seeds.append((u.loss, gamma))
        grads, u.messages = gradients(seeds, states + u.weights, net.instants)
        for v in u.states + u.weights:
            g = grads[v]
            u.own[v] = g if g is not None else E.Zero(v.shape)
        for x in states:
            if x not in u.states and grads[x] is not None:
                u.outgoing[x] = grads[x]
    return units


def _unit_name(states, k, schedule):
    if schedule.scheme == "partial":
        return f"g{k}"
    if schedule.scheme == "nonlocal" or not states:
        return "net"
    # declared names may not contain '__', so joined names are unique
    return "__".join(x.name for x in states)


def _assign(net, units):
    """Give each unit its weights and loss terms. Returns (weight, unit names) for a
    weight that would belong to two units, else None."""
    unit_of = {x: u for u in units for x in u.states}
    owner = {}                  # weights go to the units whose dynamics use them
    for u in units:
        for x in u.states:
            for w in _reads(net.dynamics_of[x.name], net):
                if w.kind == "weight":
                    owner.setdefault(w, set()).add(u.name)
    # loss terms go to the unit of the last state they read (else of a weight they read)
    order = {v: i for i, v in enumerate(net.vars.values())}
    for term in _loss_terms(net.loss_expr):
        read = _reads(term, net)
        st = sorted((v for v in read if v.kind == "state"), key=order.get)
        ws = sorted((v for v in read if v.kind == "weight"), key=order.get)
        owned = [w for w in ws if w in owner]
        if st:
            u = unit_of[st[-1]]
        elif owned:
            u = next(x for x in units if x.name == min(owner[owned[0]]))
        else:
            u = units[-1]
        u.loss = term if u.loss is None else E.add(u.loss, term)
        for w in ws:
            owner.setdefault(w, set()).add(u.name)
    for w in net.of_kind("weight"):
        names = owner.get(w, {units[-1].name})
        if len(names) > 1:
            return w, names
        next(u for u in units if u.name in names).weights.append(w)
    return None


def _groups(net, groups):
    if not groups:
        raise DeclarationError("scheme 'partial' needs groups=[[state names], ...]")
    states = {x.name: x for x in net.of_kind("state")}
    seen, units = {}, []
    for k, group in enumerate(groups):
        members = []
        for item in group:
            name = item.name if isinstance(item, Var) else item
            if name not in states:
                raise DeclarationError(f"partial scheme: {name!r} in group {k} is not a state of "
                                       f"network {net.name!r}; states: {list(states)}")
            if name in seen:
                raise DeclarationError(f"partial scheme: state {name!r} is in groups "
                                       f"{seen[name]} and {k}")
            seen[name] = k
            members.append(states[name])
        if not members:
            raise DeclarationError(f"partial scheme: group {k} is empty; give each group "
                                   f"state names of network {net.name!r}: {list(states)}")
        members.sort(key=list(states.values()).index)
        units.append(members)
    missing = [n for n in states if n not in seen]
    if missing:
        raise DeclarationError(f"partial scheme: state(s) {missing} are in no group")
    return units
