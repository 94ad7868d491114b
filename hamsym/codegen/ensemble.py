"""What the template needs for `Ensemble`: K learners of one module stepped together.

The ensemble kernel calls the module's own `step` on learner i's views: every array
argument of step (weights, costates, states, work buffers) is stacked along a
leading learner axis and indexed `[__i]`, every hyperparameter or param is a (K,)
array indexed `[__i]`, and every input or target stream is indexed
`[__s<j>, __k]`, where `__s<j>` is the learner's own row of a (K, T, n) stream or
row 0 of a shared (1, T, n) one. Everything is derived from step's argument list,
so the kernel follows step when step's arguments change.
"""

from __future__ import annotations

from dataclasses import dataclass

from .per_weight import hyper_scalars


@dataclass(frozen=True)
class EnsembleLoop:
    args: list           # parameter names of _ensemble_span before its own
    call: list           # step()'s arguments for learner __i at row __k
    rows: list           # (row variable, stream): each stream's row for learner __i
    roles: tuple         # ENSEMBLE_ROLES: (kind, key) of each of step()'s arguments


def ensemble_loop(system, step_args):
    """The ensemble kernel's arguments and its call of step, and the role of each
    argument ((kind, key) with kind one of weights, costates, states, data, hyper,
    work) so the Python side can pass them in order."""
    net, p = system.net, system.costates
    roles = {}
    for w in net.of_kind("weight"):
        roles[w.name], roles[p[w].name] = ("weights", w.name), ("costates", w.name)
    for x in net.of_kind("state"):
        roles[x.name], roles[p[x].name] = ("states", x.name), ("costates", x.name)
    data = [d.name for d in net.of_kind("input") + net.of_kind("target")]
    for d in data:
        roles[d] = ("data", d)
    for name in hyper_scalars(system) + [q.name for q in net.of_kind("param")]:
        roles[name] = ("hyper", name)
    for name in step_args:
        roles.setdefault(name, ("work", name))          # the step's work buffers
    # the kernel's own names start with '__': generated and declared names never do
    streams = {d: f"__s{j}" for j, d in enumerate(d for d in step_args if d in data)}
    args = [f"{a}_stream" if a in streams else a for a in step_args]
    call = [f"{a}_stream[{streams[a]}, __k]" if a in streams else f"{a}[__i]" for a in step_args]
    return EnsembleLoop(args=args, call=call,
                        rows=[(row, f"{d}_stream") for d, row in streams.items()],
                        roles=tuple(roles[a] for a in step_args))
