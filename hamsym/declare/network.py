"""Declaring a network: inputs, targets, weights, neuron states and their dynamics,
instantaneous neurons, named constants, and the loss.

Every name ends up in generated code, so it is checked here: a valid Python
identifier, not a keyword, not reserved by hamsym, not declared twice. Python reads
identifiers folded by NFKC (full-width `Ｗ１` is `W1`), so names are compared folded.
"""

from __future__ import annotations

import builtins
import keyword
import math
import numbers
import unicodedata

from .expr import DeclarationError, ShapeError, Var, as_expr, shape_str
from .reductions import CrossEntropy
from .rewrite import walk

#: hyperparameters of Hamiltonian Learning (docs/mathematics.md, section 1; the authors' names)
#: and the time step
HYPERPARAMETERS = ("gamma", "beta", "theta", "theta_neurons", "flip", "delta")
HYPER = {name: Var(name, (), "hyper") for name in HYPERPARAMETERS}

# names the generated module uses for itself (its top-level names, and the argument
# names of its functions); tests check that every top-level name of a module is here
_RESERVED = set(HYPERPARAMETERS) | {
    "np", "numba", "math", "warnings", "sys", "os", "loss", "losses", "step", "run", "forward",
    "predict", "advance", "work", "self", "Integrator", "INPUTS", "TARGETS", "WEIGHTS", "STATES",
    "PARAMS", "HYPER", "WORK", "FORWARD", "OUTPUTS", "SPEC_HASH", "VERSIONS", "SCHEME",
    "RESET_NEURON_COSTATE", "RESET_WEIGHT_COSTATE", "FRESH_WEIGHT_COSTATE", "DTYPE", "UNITS",
    "CHANNELS", "DISTRIBUTABLE", "DistributedIntegrator", "RankFailure",
    "Interrupted", "DivergenceError", "HyperparameterWarning", "RECORD", "Recorder",
    "METRICS", "Metrics",
    "Ensemble", "DivergenceWarning", "STRUCTURE", "RUNTIME", "RUNTIME_DIGEST", "FORWARD_ARGS",
    "ADVANCE", "SCALARS", "BOUND", "ENSEMBLE_ROLES", "DISTRIBUTED_REASON", "CheckpointError",
    "PER_WEIGHT", "rank_loop"}
#: keyword arguments of the generated module's public classes (Integrator, Ensemble,
#: Recorder, DistributedIntegrator): inputs and targets become parameters of run() next to
#: record=, every=, progress=, and params are passed by name next to seed=, dtype=, ...
#: tests/test_module_paths.py checks that every such keyword of a rendered module is here
RUNTIME_KEYWORDS = frozenset({
    "K", "baseline", "check_finite", "chunk", "costates", "dtype", "every", "keep_states", "last",
    "metrics", "on_chunk", "progress", "ranks", "recent", "record", "samples", "seed", "seeds", "states",
    "steps", "timeout", "weights", "window"})
_RESERVED |= RUNTIME_KEYWORDS
_RESERVED |= {n for n in dir(builtins) if not n.startswith("_")}
# patterns of generated identifiers: kernels emit_<unit>, update_<unit>, streams <input>_stream;
# '__' separates the parts of generated names (unit names join state names with it)
_RESERVED_PREFIXES = ("_", "p_", "dH_d", "emit_", "update_", "advance_")
_RESERVED_SUFFIXES = ("_stream",)


def folded(name):
    """The identifier Python reads for name (NFKC: full-width `Ｗ１` is `W1`)."""
    return unicodedata.normalize("NFKC", name)


def _check_name(name, what):
    if not isinstance(name, str) or not name.isidentifier():
        raise DeclarationError(f"{what} name {name!r} is not a valid Python identifier")
    python = folded(name)
    as_read = "" if python == name else f" (Python reads it as {python!r})"
    if keyword.iskeyword(python) or keyword.issoftkeyword(python):
        raise DeclarationError(f"{what} name {name!r} is a Python keyword{as_read}")
    if python in RUNTIME_KEYWORDS:
        raise DeclarationError(f"{what} name {name!r}{as_read} is a keyword argument of the "
                               "generated module's Integrator or Ensemble "
                               f"({', '.join(sorted(RUNTIME_KEYWORDS))}): choose another name")
    if python in _RESERVED:
        raise DeclarationError(f"{what} name {name!r} is reserved by hamsym{as_read} "
                               "(a hyperparameter, a builtin or a name of the generated module)")
    if python.startswith(_RESERVED_PREFIXES) or python.endswith(_RESERVED_SUFFIXES) or \
            "__" in python:
        raise DeclarationError(
            f"{what} name {name!r} is kept for generated code: declared names may not start "
            f"with {', '.join(map(repr, _RESERVED_PREFIXES))}, end with '_stream' or contain '__'")


def _shape(size, what, name):
    try:
        shape = (size, 1) if isinstance(size, numbers.Integral) else tuple(size)
    except TypeError:
        shape = ()

    if len(shape) == 1:
        shape = (shape[0], 1)
    if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                  and s > 0 for s in shape):
        raise DeclarationError(f"{what} {name!r}: size {size!r} must be a positive int "
                               "(a vector) or a pair of them (a matrix)")
    return (int(shape[0]), int(shape[1]))


class Network:
    """A network to learn over time.

    >>> net = Network("tiny")
    >>> u, y = net.input("u", 3), net.target("y", 2)
    >>> W = net.weight("W", (2, 3))
    >>> net.loss(sum_squares(W @ u - y) / 2)         # doctest: +SKIP
    """

    def __init__(self, name="net"):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise DeclarationError(f"network name {name!r} is not a valid Python identifier")
        self.name = name
        self.vars = {}              # name -> Var, in declaration order
        self.instants = {}          # name -> defining expression
        self.dynamics_of = {}       # state name -> f
        self.defaults = {}          # param name -> default value
        self.loss_expr = None
        self.delta = HYPER["delta"]   # the time step, for dynamics such as (g - x)/delta

    # -- declarations -----------------------------------------------------------------
    def _declare(self, name, shape, kind):
        _check_name(name, kind)
        if name in self.vars:
            raise DeclarationError(f"{kind} {name!r}: the name is already declared as "
                                   f"{self.vars[name].kind} {name!r}")
        same = [v for v in self.vars.values() if folded(v.name) == folded(name)]
        if same:
            raise DeclarationError(f"{kind} {name!r} and {same[0].kind} {same[0].name!r} are one "
                                   f"Python identifier, {folded(name)!r} (Python folds names by "
                                   "NFKC): choose another name")
        var = Var(name, shape, kind)
        self.vars[name] = var
        return var

    def input(self, name, size):
        """An input vector u(t) of the stream."""
        return self._declare(name, _shape(size, "input", name), "input")

    def target(self, name, size):
        """A target vector y(t) of the stream (supervision)."""
        return self._declare(name, _shape(size, "target", name), "target")

    def weight(self, name, shape):
        """A learnable matrix (rows, cols) or vector (n); its velocity is the control."""
        return self._declare(name, _shape(shape, "weight", name), "weight")

    def state(self, name, size):
        """A neuron state vector; give its dynamics with `dynamics`."""
        return self._declare(name, _shape(size, "state", name), "state")

    def param(self, name, default):
        """A named scalar constant (a regularization strength, a time constant)."""
        if not isinstance(default, numbers.Real) or isinstance(default, bool) or \
                not math.isfinite(default):
            raise DeclarationError(f"param {name!r}: default {default!r} must be a finite real number")
        var = self._declare(name, (), "param")
        self.defaults[name] = float(default)
        return var

    def instant(self, name, expr):
        """An instantaneous (algebraic) neuron: a name for an expression, with no state."""
        expr = self._own(expr, f"instant {name!r}")
        if expr.is_scalar:
            raise ShapeError(f"instant {name!r} = `{expr}` is a scalar; instants are vectors or matrices")
        var = self._declare(name, expr.shape, "instant")
        self.instants[name] = expr
        return var

    def dynamics(self, state, f):
        """Declare d state/dt = f."""
        if not (isinstance(state, Var) and self.vars.get(state.name) == state and state.kind == "state"):
            raise DeclarationError(f"dynamics: `{state}` is not a state of network {self.name!r}; "
                                   "declare it with net.state(name, size)")
        f = self._own(f, f"dynamics of state {state.name!r}")
        if f.shape != state.shape:
            raise ShapeError(f"dynamics of state {state.name!r}: `{f}` is {shape_str(f.shape)}, "
                             f"the state is {shape_str(state.shape)}")
        if state.name in self.dynamics_of:
            raise DeclarationError(f"dynamics of state {state.name!r} are already declared")
        self.dynamics_of[state.name] = f

    def loss(self, expr):
        """The loss (potential) l; a scalar expression, regularizers included."""
        expr = self._own(expr, "loss")
        if not expr.is_scalar:
            raise ShapeError(f"the loss `{expr}` is {shape_str(expr.shape)}, not a scalar: "
                             "reduce it, e.g. with hs.sum_squares(...)")
        if self.loss_expr is not None:
            raise DeclarationError(f"network {self.name!r} already has a loss `{self.loss_expr}`; "
                                   "add the terms into one expression")
        for node in walk(expr):
            if isinstance(node, CrossEntropy):
                bad = [v.name for v in self.data_leaves(node.args[1], invert=True)]
                if bad:
                    raise DeclarationError(f"softmax_cross_entropy target `{node.args[1]}` depends on "
                                           f"{', '.join(bad)}; the target must be data (inputs/targets)")
        self.loss_expr = expr

    # -- queries ------------------------------------------------------------------------
    def of_kind(self, kind):
        return [v for v in self.vars.values() if v.kind == kind]

    def leaves(self, expr):
        """The declared names expr depends on, looking through instantaneous neurons."""
        out, seen, todo = [], set(), [expr]
        while todo:
            for v in (n for n in walk(todo.pop()) if isinstance(n, Var)):
                if v in seen:
                    continue
                seen.add(v)
                if v.kind == "instant":
                    todo.append(self.instants[v.name])
                else:
                    out.append(v)
        return out

    def data_leaves(self, expr, invert=False):
        """Leaves of expr that are data; with invert, the ones that are not."""
        return [v for v in self.leaves(expr)
                if (v.kind in ("input", "target", "param", "hyper")) != invert]

    def check_complete(self):
        if self.loss_expr is None:
            raise DeclarationError(f"network {self.name!r} has no loss: call net.loss(expr)")
        missing = [v.name for v in self.of_kind("state") if v.name not in self.dynamics_of]
        if missing:
            raise DeclarationError(f"state {missing[0]!r} has no dynamics: "
                                   f"call net.dynamics({missing[0]}, f)")

    def _own(self, expr, where):
        expr = as_expr(expr, where)
        for node in walk(expr):
            # identity, not equality: a same-named Var of another network is not ours
            if isinstance(node, Var) and node.kind != "hyper" and self.vars.get(node.name) is not node:
                raise DeclarationError(f"{where}: `{node.name}` is not declared in network "
                                       f"{self.name!r}")
        return expr

    def __repr__(self):
        parts = [f"{v.kind} {v.name} {shape_str(v.shape)}" for v in self.vars.values()]
        return f"Network({self.name!r}: " + ", ".join(parts) + ")"
