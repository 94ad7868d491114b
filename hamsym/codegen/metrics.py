"""Metrics and their naive baselines, measured as the loss is: at every step k, before
its update, from what the loss of step k reads (progressive validation).

The loss names what is compared with what. A term sum_squares(p - y) (or mse(p, y),
or either with the sides swapped) of a target y gives regression: the prediction p is
measured by MAE and RMSE against y. A term softmax_cross_entropy(z, y) gives
classification: argmax z against argmax y, accuracy. The loss must hold exactly one
such term; otherwise no pair is identifiable and the module offers no metric
(METRICS["reason"] says why).

The baselines see only the targets of the steps before k: for regression the last
target (the previous step's) or the running mean of the targets, for classification
the most frequent class so far (the first on a tie, as numpy's argmax). Before any
target was seen a baseline has nothing to predict from, so the first step measured
counts for neither the model nor the baseline (its record rows hold the model's
figure and NaN for the baseline's): both are measured over the same steps.

The compiled part: `_prediction`, a kernel computing p (or z) from the weights, states
and inputs at step k, and the lines `_span_record` runs before each step when its
_m_on argument is true. Per step they add to _m_sum the model's and the baseline's
figures (regression: mean |e| and mean e^2 over the target's entries; classification:
1.0 for a hit), and write the step's own figures into the record rows asked for.
`_span`, the loop without recording or metrics, is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..declare.expr import Add, Const, Reciprocal, Scale, Var, add, neg
from ..declare.network import HYPERPARAMETERS
from ..declare.reductions import CrossEntropy, SumSquares
from ..declare.rewrite import expand, walk
from .lower import Lowering, count_uses, float_prologue, storage_shape
from .step import Kernel

REGRESSION = ("mae", "rmse")
CLASSIFICATION = ("accuracy",)


@dataclass(frozen=True)
class Pair:
    kind: str                # "regression" or "classification"
    prediction: object       # Expr: p, or the logits z
    target: Var


@dataclass(frozen=True)
class MetricsCode:
    """What the module needs for metrics: the METRICS table, the `_prediction` kernel
    (None without a pair), its buffers, and the record loop's arguments and lines."""
    table: dict
    kernel: Kernel | None = None
    buffers: dict = field(default_factory=dict)
    args: list = field(default_factory=list)        # of _span_record, after forward's
    lines: list = field(default_factory=list)       # run before step() when _m_on
    slots: list = field(default_factory=list)       # (record key, _r_ name, shape)


def _terms(loss):
    """The loss's additive terms, each with its constant positive scale peeled off."""
    out = []
    for t in (loss.args if isinstance(loss, Add) else (loss,)):
        while isinstance(t, Scale) and (isinstance(t.args[0], Const) and t.args[0].value > 0 or
                                        isinstance(t.args[0], Reciprocal) and
                                        isinstance(t.args[0].args[0], Const)):
            t = t.args[1]
        out.append(t)
    return out


def find_pair(net):
    """(Pair, None), or (None, why no prediction/target pair is identifiable)."""
    found = []
    for node in walk(net.loss_expr):
        if isinstance(node, CrossEntropy) and isinstance(node.args[1], Var) and \
                node.args[1].kind == "target":
            found.append(Pair("classification", node.args[0], node.args[1]))
        elif isinstance(node, SumSquares) and isinstance(node.args[0], Add):
            pair = _difference(net, node.args[0])
            if pair is not None:
                found.append(pair)
    if len(found) != 1:
        return None, ("the loss holds no term sum_squares(p - y), mse(p, y) or "
                      "softmax_cross_entropy(z, y) of a target y" if not found else
                      f"the loss compares {len(found)} predictions with targets; metrics need one")
    pair = found[0]
    if any(v.kind == "target" for v in net.leaves(pair.prediction)):
        return None, f"the prediction `{pair.prediction}` reads a target"
    if pair.kind == "classification" and len(storage_shape(pair.target.shape)) != 1:
        return None, f"the classes of target {pair.target.name} are not a vector"
    return pair, None


def _difference(net, sum_):
    """Pair("regression", p, y) for p - y (or y - p) with y a target, else None."""
    terms = list(sum_.args)
    for i, t in enumerate(terms):
        sign = -1 if isinstance(t, Scale) and isinstance(t.args[0], Const) and \
            t.args[0].value == -1 else 1
        y = t.args[1] if sign < 0 else t
        if isinstance(y, Var) and y.kind == "target":
            rest = add(*terms[:i], *terms[i + 1:])
            return Pair("regression", rest if sign < 0 else neg(rest), y)
    return None


def lower_metrics(system, threads=None):
    """MetricsCode of the system's network."""
    net = system.net
    pair, why = find_pair(net)
    if pair is None:
        return MetricsCode(table={"kind": None, "reason": why})
    keys = REGRESSION if pair.kind == "regression" else CLASSIFICATION
    shape = storage_shape(pair.target.shape)
    entries = shape[0] * (shape[1] if len(shape) == 2 else 1)
    table = {"kind": pair.kind, "keys": list(keys), "target": pair.target.name,
             "prediction": str(pair.prediction), "entries": entries,
             "state": 1 + (2 * entries if pair.kind == "regression" else entries),
             "columns": 2 * len(keys) if pair.kind == "regression" else 2}
    instants = {net.vars[n]: e for n, e in net.instants.items()}
    p = expand(pair.prediction, instants, {})
    low = Lowering(count_uses([p], {p}), threads=threads)
    low.store(p, "_p_out")
    reads = {v.name for v in walk(p) if isinstance(v, Var)}
    inputs = [v.name for v in net.of_kind("input")]
    kernel_args = [v.name for v in net.of_kind("weight") + net.of_kind("state") +
                   net.of_kind("input") if v.name in reads]
    scalars = list(HYPERPARAMETERS) + [q.name for q in net.of_kind("param")]
    kernel_args += scalars + list(low.buffers)
    kernel = Kernel("_prediction", kernel_args, low.lines, False, low.threaded,
                    tuple(float_prologue(kernel_args, low.lines, set(scalars))))
    buffers = {f"_p_{b}" if not b.startswith("_p_") else b: s for b, s in low.buffers.items()}
    renamed = {b: (f"_p_{b}" if not b.startswith("_p_") else b) for b in low.buffers}
    table["buffers"] = buffers
    call = [f"{a}_stream[_k]" if a in inputs else renamed.get(a, a) for a in kernel_args]
    # recordable like "loss", unless a declared name took the key (the name wins)
    slots = [(key, slot, ()) for key, slot in [(k, f"_r_m_{k}") for k in keys] +
             [(f"{k}_baseline", f"_r_b_{k}") for k in keys] if key not in net.vars]
    args = ["_m_on", "_m_last", "_m_state", "_m_sum", "_m_y", "_m_scale", "_m_centre"]
    args += list(buffers)
    body = [f"_prediction({', '.join(call)})"]
    body += (_regression if pair.kind == "regression" else _classification)(
        pair.target.name, shape, entries)
    if slots:
        body.append("if _take:")
        for _, slot, _ in slots:
            body += [f"    if {slot}.shape[0]:", f"        {slot}[_row] = {_ROW[slot]}"]
    lines = ["    if _m_on:"] + ["        " + line for line in body]
    return MetricsCode(table=table, kernel=kernel, buffers=buffers, args=args, lines=lines,
                       slots=slots)


def _entries(shape, depth=0):
    """Loops over a target's entries: (opening lines, index into the sample, flat index,
    depth of the body)."""
    pad = "    " * depth
    if len(shape) == 1:
        return [f"{pad}for _i in range({shape[0]}):"], "_i", "_i", depth + 1
    return ([f"{pad}for _i in range({shape[0]}):", f"{pad}    for _j in range({shape[1]}):"],
            "_i, _j", f"_i * {shape[1]} + _j", depth + 2)


def _regression(target, shape, n):
    # the state: [targets seen, the last target (n), the sum of the targets (n)]; the
    # units: the target stream's, or, when _m_scale has rows (a standardised run), the
    # original units: _m_y the target, the prediction mapped back by scale and centre
    loops, at, flat, depth = _entries(shape)
    pad = "    " * depth
    lines = ["_ma = 0.0", "_ms = 0.0", "_ba = 0.0", "_bs = 0.0", "_mc = _m_state[0]"] + loops
    lines += [f"{pad}_y = float({target}_stream[_k, {at}])",
              f"{pad}_p = float(_p_out[{at}])",
              f"{pad}if _m_scale.shape[0]:",
              f"{pad}    _p = _p * _m_scale[_k, {flat}] + _m_centre[_k, {flat}]",
              f"{pad}    _y = _m_y[_k, {flat}]",
              f"{pad}_d = _p - _y",
              f"{pad}_ma += abs(_d)",
              f"{pad}_ms += _d * _d",
              f"{pad}if _m_last:",
              f"{pad}    _q = _m_state[1 + {flat}]",
              f"{pad}elif _mc > 0.0:",
              f"{pad}    _q = _m_state[{1 + n} + {flat}] / _mc",
              f"{pad}else:",
              f"{pad}    _q = 0.0",
              f"{pad}_d = _q - _y",
              f"{pad}_ba += abs(_d)",
              f"{pad}_bs += _d * _d",
              f"{pad}_m_state[1 + {flat}] = _y",
              f"{pad}_m_state[{1 + n} + {flat}] += _y",
              "_m_state[0] = _mc + 1.0",
              f"_ma /= {n}.0", f"_ms /= {n}.0", f"_ba /= {n}.0", f"_bs /= {n}.0",
              "if _mc > 0.0:",
              "    _m_sum[0] += _ma", "    _m_sum[1] += _ms", "    _m_sum[2] += _ba",
              "    _m_sum[3] += _bs",
              "else:",
              "    _ba = _bs = math.nan"]
    return lines


def _classification(target, shape, n):
    # the state: [targets seen, how often each class was the target]
    return ["_pi = 0", "_ti = 0", "_bi = 0",
            f"for _i in range(1, {n}):",
            "    if _p_out[_i] > _p_out[_pi]:",
            "        _pi = _i",
            f"    if {target}_stream[_k, _i] > {target}_stream[_k, _ti]:",
            "        _ti = _i",
            "    if _m_state[1 + _i] > _m_state[1 + _bi]:",
            "        _bi = _i",
            "_ma = 1.0 if _pi == _ti else 0.0",
            "_ba = 1.0 if _bi == _ti else 0.0",
            "if _m_state[0] > 0.0:",
            "    _m_sum[0] += _ma", "    _m_sum[1] += _ba",
            "else:",
            "    _ba = math.nan",
            "_m_state[0] += 1.0",
            "_m_state[1 + _ti] += 1.0"]


# what a record row of each metric holds: the step's own figure
_ROW = {"_r_m_mae": "_ma", "_r_m_rmse": "math.sqrt(_ms)", "_r_b_mae": "_ba",
        "_r_b_rmse": "math.sqrt(_bs)", "_r_m_accuracy": "_ma", "_r_b_accuracy": "_ba"}
