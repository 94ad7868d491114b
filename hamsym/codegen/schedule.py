"""Schedules: the order of the updates inside one Euler step (docs/mathematics.md,
section 6).

Every derivative of a step is taken at the step-k values. What differs is which
weight costate moves the weights:

- ``nonlocal`` (Gauss-Seidel over the strongly connected components of the state
  dependency graph, in topological order): states that read each other update
  together from step-k values, so an exact map (a rotation) stays exact; a
  feed-forward chain is swept forward. Costates go in reverse order, and the
  weights move with the new p_w. On instantaneous layers with flip = -1 this is
  SGD with momentum.
- ``local`` (Jacobi): every update reads step-k values only; in particular the
  weights move with the previous step's p_w (the authors' ``local`` switch: a
  gradient that arrives one step late). Each state block is its own unit.
- ``partial``: the user's groups of state blocks; Gauss-Seidel (over components,
  as in ``nonlocal``) inside a group, Jacobi between groups.

``fresh_weight_costate=True`` (scheme ``local`` only) keeps the Jacobi update of
states and costates, all derivatives at step k, but moves each weight with the
p_w it has just computed: the authors' ``local=False`` on a network whose neurons
run locally (docs/authors.md). Nothing leaves its unit, so the units stay as local
as in ``local``. On a network without states it is the ``nonlocal`` step.
"""

from __future__ import annotations

import heapq
import warnings
from dataclasses import dataclass

from ..errors import DeclarationError

SCHEMES = ("nonlocal", "local", "partial")


class FrozenWeightsWarning(UserWarning):
    """A configuration under which the weights can never move."""


@dataclass(frozen=True)
class Schedule:
    scheme: str = "nonlocal"
    reset_neuron_costate: bool = False
    reset_weight_costate: bool = False
    groups: tuple = ()
    fresh_weight_costate: bool = False

    def __post_init__(self):
        for flag in ("reset_neuron_costate", "reset_weight_costate", "fresh_weight_costate"):
            if not isinstance(getattr(self, flag), bool):
                raise DeclarationError(f"{flag}={getattr(self, flag)!r}: expected True or False")
        if not isinstance(self.groups, (list, tuple)) or not all(
                isinstance(g, (list, tuple)) for g in self.groups):
            raise DeclarationError(f"groups={self.groups!r}: expected a list of lists of state names")
        if self.scheme not in SCHEMES:
            raise DeclarationError(f"unknown scheme {self.scheme!r}; choose one of {SCHEMES}")
        if self.groups and self.scheme != "partial":
            raise DeclarationError(f"groups are for scheme='partial', not {self.scheme!r}")
        if self.fresh_weight_costate and self.scheme != "local":
            # the other schemes move the weights with the new p_w already
            raise DeclarationError(f"fresh_weight_costate=True is for scheme='local' (scheme "
                                   f"{self.scheme!r} moves the weights with the new p_w already)")
        # names, not Vars, so the schedule prints and hashes the same way every time
        object.__setattr__(self, "groups", tuple(
            tuple(getattr(x, "name", x) for x in g) for g in self.groups))
        if self.weights_frozen:
            warnings.warn("scheme='local' with reset_weight_costate=True freezes the weights: "
                          "they move with the previous p_w, which was just reset to zero",
                          FrozenWeightsWarning, stacklevel=3)

    @property
    def weights_frozen(self):
        """Weights that move with the old p_w, which a reset zeroes: they never move."""
        return self.scheme == "local" and self.reset_weight_costate and not self.fresh_weight_costate

    def describe(self, sweeps=()):
        """Plain-text lines for a module header; sweeps: (unit name, the components of
        its states in the order they are updated, see `components`)."""
        if self.scheme == "local":
            lines = ["scheme local (Jacobi): every right side at step k; w+ uses the " +
                     ("new p_w (fresh_weight_costate)" if self.fresh_weight_costate else "old p_w")]
        else:
            where = "inside each group, Jacobi between groups " + repr([list(g) for g in self.groups]) \
                if self.scheme == "partial" else "over the whole network"
            lines = [f"scheme {self.scheme} (Gauss-Seidel {where}):",
                     "states are swept forward by strongly connected components (states that",
                     "read each other update together, from step-k values; a component reads the",
                     "new values of those before it), costates backward, then the weights, which",
                     "move with the new p_w"]
            lines += [f"  sweep of {unit}: " + " -> ".join("[" + ", ".join(x.name for x in c) + "]"
                                                        for c in comps)
                      for unit, comps in sweeps if comps]
        resets = [n for n, on in (("neuron costates", self.reset_neuron_costate),
                                  ("weight costates", self.reset_weight_costate)) if on]
        if resets:
            lines.append(f"after each step, reset to zero: {', '.join(resets)}")
        return lines


def components(net, states):
    """The strongly connected components of the dependency graph of `states` (x -> z
    when the dynamics of x read z, instants looked through), in topological order:
    a component comes after those it reads; ties go by declaration order."""
    index = {x: i for i, x in enumerate(states)}
    reads = {x: {z for z in net.leaves(net.dynamics_of[x.name]) if z in index} for x in states}
    reach = {}
    for x in states:                                  # depth-first reachability
        seen, todo = set(), [x]
        while todo:
            for z in reads[todo.pop()]:
                if z not in seen:
                    seen.add(z)
                    todo.append(z)
        reach[x] = seen
    comp_of, comps = {}, []
    for x in states:
        if x not in comp_of:
            comp = [z for z in states if z is x or (z in reach[x] and x in reach[z])]
            comps.append(comp)
            for z in comp:
                comp_of[z] = len(comps) - 1
    needs = [{comp_of[z] for x in c for z in reads[x]} - {k} for k, c in enumerate(comps)]
    order, done = [], set()
    ready = [k for k in range(len(comps)) if not needs[k]]
    heapq.heapify(ready)
    while ready:                                      # Kahn, lowest declaration first
        k = heapq.heappop(ready)
        order.append(comps[k])
        done.add(k)
        for j in range(len(comps)):
            if j not in done and j not in ready and needs[j] <= done:
                heapq.heappush(ready, j)
    return order
