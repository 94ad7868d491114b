"""Per-weight hyperparameters in spec files and on the command line.

    [hyper]
    beta = 0.5
    [hyper.W1]              # W1 gets its own gamma, beta, theta (those not given: global)
    beta = 0.1
    [hyper.top]             # a group: every weight listed gets these values
    weights = ["W2", "b2"]
    theta = 0.6

A [hyper.<name>] table (it may be empty) makes the module give those weights their own
scalars (the generator's per_weight option, hamsym.codegen.per_weight); `--set
beta.W1=0.1` and `--grid beta.W1=...` then set or sweep them (the scalar beta__W1).
"""

from __future__ import annotations

import math

from ..codegen.per_weight import KINDS
from ..codegen.per_weight import scalar as _own
from ..declare.network import HYPERPARAMETERS


def read(hyper, weights, fail):
    """(the [hyper] table without its sub-tables, the per_weight option they declare)."""
    scalars, per_weight = {}, {}
    for key, value in hyper.items():
        if not isinstance(value, dict):
            scalars[key] = value
            continue
        where = f"[hyper.{key}]"
        names = value.get("weights", [key])
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            fail(f"{where} weights", 'expected a list of weight names, e.g. ["W1", "b1"]')
        for n in names:
            if n not in weights:
                fail(where if "weights" not in value else f"{where} weights",
                     f"{n!r} is not a weight; the weights: {', '.join(weights)}"
                     + ("" if "weights" in value else
                        " (a group names its weights: weights = [...])"))
        own = {}
        for kind, v in value.items():
            if kind == "weights":
                continue
            if kind not in KINDS:
                fail(f"{where} {kind}", f"not a per-weight hyperparameter; they are "
                     f"{', '.join(KINDS)} (and weights = [...] for a group)")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                fail(f"{where} {kind}", f"expected a finite number, got {v!r}")
            own[kind] = float(v)
        for n in names:
            per_weight.setdefault(n, {}).update(own)
    return scalars, per_weight


def scalar(name):
    """The module's name for a command-line name: beta.W1 -> beta__W1 (others unchanged)."""
    kind, dot, weight = name.partition(".")
    return _own(kind, weight) if dot and kind in KINDS and weight else name


def names(spec):
    """The per-weight scalars of the spec's module."""
    own = spec.module.get("per_weight", {})
    return [_own(k, w.name) for w in spec.network.of_kind("weight") if w.name in own
            for k in KINDS]


def known(spec):
    """Every name --set and --grid take for the spec: hyperparameters, the per-weight
    scalars of its module and the network's params."""
    return list(HYPERPARAMETERS) + names(spec) + list(spec.network.defaults)


def unknown_message(spec, option, name):
    """Why `option name` is refused: it names a weight without its own values, or nothing."""
    kind, dot, weight = name.replace("__", ".", 1).partition(".")
    weights = [w.name for w in spec.network.of_kind("weight")]
    if dot and kind in KINDS:
        if weight not in weights:
            return (f"{option} {name}: {weight!r} is not a weight of {spec.network.name}; "
                    f"its weights: {', '.join(weights)}")
        return (f"{option} {name}: {weight} has no {kind} of its own: add a [hyper.{weight}] "
                "table to the spec (it may be empty)")
    return None
