"""The layout of a generated module: its tables (names, shapes and argument orders,
read by the runtime) and the argument lists of the loops around step().

step() takes, in order: the weights, the weights' costates, the states, the states'
costates, one sample of each input and target, the scalars (hyperparameters, then
params) and the work buffers. The loops take the same with each sample replaced by a
stream; the runtime passes its arrays in the order BOUND and SCALARS give.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..declare.network import HYPERPARAMETERS
from . import per_weight
from .ensemble import EnsembleLoop, ensemble_loop
from .lower import storage_shape
from .record import RecordLoop, record_loop


@dataclass(frozen=True)
class Tables:
    """What the runtime reads: every dict maps a name to its storage shape (or value), in
    the order the kernels take them."""
    inputs: dict
    targets: dict
    weights: dict
    states: dict
    params: dict             # name -> default value
    hyper: dict              # name -> default value
    per_weight: tuple        # the weights with their own gamma, beta, theta (codegen.per_weight)
    work: dict               # step()'s work buffers
    forward: dict            # forward()'s buffers
    forward_args: tuple      # forward()'s parameters
    outputs: dict            # output name -> its forward buffer
    record: dict             # what can be recorded: key -> shape of one row
    metrics: dict            # what metrics compare (codegen.metrics), or why none
    advance: dict            # _advance()'s buffers
    scalars: tuple           # step()'s scalar parameters
    bound: tuple             # (table, key, shape) of each array parameter of step()
    ensemble_roles: tuple    # (kind, key) of each parameter of step()
    units: list              # the distributed units: name, states, weights, buffers, data
    channels: list           # (buffer, source unit, reader units, published state or None)
    distributed_reason: str | None


@dataclass(frozen=True)
class Bound:
    """_bound_step: step() with its arrays rebuilt from the addresses in a table."""
    args: list               # _table, then the sample (or _like: an empty array)
    views: list              # (parameter, index in the table, array of the dtype, shape)
    scalars: list            # (parameter, index in the table)
    data: list               # (sample name, shape): checked before anything moves
    step_args: list


@dataclass(frozen=True)
class Loops:
    step_args: list
    run_args: list           # the streams' loops: run(), _span()
    run_call: list           # step()'s arguments at row _k
    record: RecordLoop
    predict_args: list
    forward_call: list       # forward()'s arguments at row _k of _predict
    advance_call: list
    recorded: list           # (name, buffer) recorded by _predict at each row
    bound: Bound
    ensemble: EnsembleLoop
    rank_args: list


def layout(system, code, forward, outputs, forward_buffers, advance, advance_buffers, plan,
           metrics):
    """(Tables, Loops) of the module for the lowered step `code`, forward and advance
    kernels, distributed plan and MetricsCode."""
    net, p = system.net, system.costates
    weights, states = net.of_kind("weight"), net.of_kind("state")
    data = net.of_kind("input") + net.of_kind("target")
    inputs = [v.name for v in net.of_kind("input")]
    params = net.of_kind("param")
    arrays = [w.name for w in weights] + [p[w].name for w in weights] + \
        [x.name for x in states] + [p[x].name for x in states]
    scalars = per_weight.hyper_scalars(system) + [q.name for q in params]
    work = list(code.buffers)
    step_args = arrays + [d.name for d in data] + scalars + work
    run_args = arrays + [f"{d.name}_stream" for d in data] + scalars + work + ["losses"]
    run_call = arrays + [f"{d.name}_stream[_k]" for d in data] + scalars + work

    def shapes(vs):
        return {v.name: storage_shape(v.shape) for v in vs}

    tables_of = {}
    for kind, table in (("weight", "_weights"), ("state", "_states")):
        for v in net.of_kind(kind):
            tables_of[v.name] = (table, v.name, storage_shape(v.shape))
            tables_of[p[v].name] = ("_costates", v.name, storage_shape(v.shape))
    tables_of.update((name, ("work", name, shape)) for name, shape in code.buffers.items())
    bound = [(arg, tables_of[arg]) for arg in step_args if arg in tables_of]
    unknown = set(step_args) - set(tables_of) - {d.name for d in data} - set(scalars)
    assert not unknown, f"step() arguments of no known kind: {unknown}"
    samples = [(d.name, storage_shape(d.shape)) for d in data]
    like = samples[0][0] if samples else "_like"      # an array of the learner's dtype

    recorded = list(outputs.items()) + [(x.name, x.name) for x in states]
    predict_args = [w.name for w in weights] + [x.name for x in states] + \
        [f"_in_{n}" for n in inputs] + scalars + list(forward_buffers) + \
        list(advance_buffers) + [f"_rec_{name}" for name, _ in recorded] + ["_start", "_stop"]

    def at_row(kernel):
        return [f"_in_{a}[_k]" if a in inputs else a for a in kernel.args]

    record = record_loop(net, forward, outputs, forward_buffers, run_args, run_call,
                         lambda v: storage_shape(v.shape), metrics)
    ensemble = ensemble_loop(system, step_args)
    tables = Tables(
        inputs=shapes(net.of_kind("input")), targets=shapes(net.of_kind("target")),
        weights=shapes(weights), states=shapes(states),
        params={q.name: net.defaults[q.name] for q in params},
        hyper={**{k: system.hyper[k] for k in HYPERPARAMETERS}, **per_weight.defaults(system)},
        per_weight=tuple(system.per_weight), work=dict(code.buffers),
        forward=dict(forward_buffers), forward_args=tuple(forward.args), outputs=dict(outputs),
        record=record.table, metrics=metrics.table, advance=dict(advance_buffers), scalars=tuple(scalars),
        bound=tuple(b for _, b in bound), ensemble_roles=ensemble.roles,
        units=plan.units, channels=[(c.name, c.source, list(c.readers), c.state)
                                    for c in plan.channels],
        distributed_reason=plan.reason)
    loops = Loops(
        step_args=step_args, run_args=run_args, run_call=run_call, record=record,
        predict_args=predict_args, forward_call=at_row(forward),
        advance_call=at_row(advance), recorded=recorded,
        bound=Bound(args=["_table"] + [n for n, _ in samples] + ([] if samples else ["_like"]),
                    views=[(arg, i, like, shape) for i, (arg, (_, _, shape)) in enumerate(bound)],
                    scalars=[(name, len(bound) + i) for i, name in enumerate(scalars)],
                    data=samples, step_args=step_args),
        ensemble=ensemble,
        rank_args=arrays + [f"{d.name}_stream" for d in data] + scalars + work)
    return tables, loops
