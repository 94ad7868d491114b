"""Units of computation: which layers update together (HL.md section 4).

A unit owns some neuron states (its layers), the weights their dynamics use, and
the loss terms that read its states. Its local Hamiltonian is

    H_U = sum_{x in U} p_x . f_x + gamma * (loss terms of U)

and, since H = sum_U H_U, the gradient of H with respect to a state x of U is
dH_U/dx plus the *messages* dH_V/dx sent by the other units V. A unit therefore
needs from the others only their state vectors and these messages: this is the
whole interface between layers in the local scheme, and what a distributed run
would exchange.

- nonlocal: one unit holding everything;
- local:    one unit per state block (a network without states is one unit);
- partial:  the user's groups of state blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import expr as E
from ..chain import gradients
from ..expr import DeclarationError, Var
from ..network import HYPER


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
    if isinstance(loss, E.Add):
        return list(loss.args)
    if isinstance(loss, E.Scale) and isinstance(loss.args[1], E.Add):
        return [E.scale(loss.args[0], t) for t in loss.args[1].args]
    return [loss]


def partition(system, schedule):
    net = system.net
    states, weights = net.of_kind("state"), net.of_kind("weight")
    if schedule.scheme == "nonlocal" or not states:
        units = [Unit("net", list(states))]
    elif schedule.scheme == "local":
        units = _layers(net, states)
    else:
        units = _groups(net, schedule.groups)
    unit_of = {x: u for u in units for x in u.states}

    # weights go to the unit whose dynamics use them
    owner = {}
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
        if st:
            u = unit_of[st[-1]]
        elif ws and ws[0] in owner:
            u = next(x for x in units if x.name == min(owner[ws[0]]))
        else:
            u = units[-1]
        u.loss = term if u.loss is None else E.add(u.loss, term)
        for w in ws:
            owner.setdefault(w, set()).add(u.name)

    for w in weights:
        names = owner.get(w, {units[-1].name})
        if len(names) > 1:
            raise DeclarationError(
                f"scheme {schedule.scheme!r}: weight {w.name!r} is used by units "
                f"{sorted(names)}; in a local scheme every weight belongs to one layer "
                "(group those layers together with scheme='partial')")
        next(u for u in units if u.name in names).weights.append(w)

    gamma = HYPER["gamma"]
    for u in units:
        seeds = [(net.dynamics_of[x.name], system.costates[x]) for x in u.states]
        if u.loss is not None:
            seeds.append((u.loss, gamma))
        grads, u.messages = gradients(seeds, states + u.weights, net.instants,
                                      message_name=lambda n, u=u: f"dH_d{n}")
        for v in u.states + u.weights:
            g = grads[v]
            u.own[v] = g if g is not None else E.Zero(v.shape)
        for x in states:
            if x not in u.states and grads[x] is not None:
                u.outgoing[x] = grads[x]
    return units


def _layers(net, states):
    """One unit per state block, except that blocks whose dynamics share a weight
    (the two coordinates of an oscillator) form one layer: a weight has one owner."""
    layer = {x: i for i, x in enumerate(states)}
    users = {}
    for x in states:
        for w in _reads(net.dynamics_of[x.name], net):
            if w.kind == "weight":
                users.setdefault(w, []).append(x)
    for group in users.values():                 # merge (small: union by relabel)
        target = min(layer[x] for x in group)
        old = {layer[x] for x in group}
        for x in states:
            if layer[x] in old:
                layer[x] = target
    units = {}
    for x in states:
        units.setdefault(layer[x], []).append(x)
    return [Unit("_".join(x.name for x in members), members) for members in units.values()]


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
        members.sort(key=list(states.values()).index)       # sweep in declaration order
        units.append(Unit(f"g{k}", members))
    missing = [n for n in states if n not in seen]
    if missing:
        raise DeclarationError(f"partial scheme: state(s) {missing} are in no group")
    return units
