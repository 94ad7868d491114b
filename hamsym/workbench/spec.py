"""Networks written in TOML files: declarations, expression strings, hyperparameters.

    name = "mlp"
    loss = "sum_squares(o - y) / 2"

    [inputs]            # name = size (a vector) or [rows, cols]
    u = 4
    [targets]
    y = 2
    [weights]
    W1 = [16, 4]
    b1 = 16
    W2 = [2, 16]
    b2 = 2
    [instants]          # in order; each may use the ones above it
    h1 = "tanh(W1 @ u + b1)"
    o = "W2 @ h1 + b2"
    [hyper]             # the keyword arguments of hs.derive
    gamma = 1.0
    [hyper.W1]          # W1's own gamma, beta, theta (hamsym.workbench.per_weight_spec)
    beta = 0.1
    [module]            # the options of hs.generate / hs.load
    scheme = "nonlocal"

Further tables: [states] (sizes) with [dynamics] (state = "expression"), [params]
(name = default), [activations] (name = "expression in t", e.g. "t / (1 + abs(t))"),
[init] (seed, and [init.weights] / [init.states]: a number fills, a list gives values),
[stream] (file columns, lags and standardisation of the stream: hamsym.workbench.stream_spec).

Expression strings are never evaluated by Python nor sympified. Each is parsed with
``ast.parse(mode="eval")`` and rebuilt node by node from a whitelist: declared
names, numbers, ``+ - * / @``, ``**`` with a small integer literal exponent, unary
minus, ``.T``, and calls (positional arguments only) of the known activations and
reductions. Anything else is refused with an error that names the file, the TOML
key and the column.
"""

from __future__ import annotations

import ast
import math
import numbers
import tomllib
from dataclasses import dataclass, field

import sympy

from ..declare import activations as _act
from ..declare import reductions as _red
from ..declare.expr import DeclarationError
from ..declare.network import HYPER, Network, folded
from . import per_weight_spec
from .files import regular_file
from .stream_spec import StreamSpec, read_table

#: limits on expression strings (far above any real network; they bound the work)
MAX_LENGTH = 4000
MAX_DEPTH = 64
MAX_EXPONENT = 8
MAX_CONSTANT = 1e15
MAX_NODES = 5000        # nodes of the expression written out as a tree (x ** 8 is 8 x's)
MAX_FILE = 1 << 20      # bytes of a spec file
MAX_SEED = 2 ** 63 - 1  # seeds are stored as int64 in checkpoints

_TABLES = ("inputs", "targets", "weights", "states", "params", "activations", "instants",
           "dynamics", "hyper", "module", "init", "stream")
_TOP = ("name", "loss", "description") + _TABLES
_MODULE_OPTIONS = ("scheme", "groups", "reset_neuron_costate", "reset_weight_costate",
                   "fresh_weight_costate", "dtype")


class SpecError(DeclarationError):
    """A spec file that cannot be read; the message names the file, the key and the column."""


@dataclass(frozen=True)
class Spec:
    """What a spec file declares; unpacks as ``network, hyper, module, init = load_spec(path)``."""

    network: Network
    hyper: dict      # keyword arguments of hs.derive
    module: dict     # keyword arguments of hs.generate / hs.load (scheme, groups, ...)
    init: dict       # keyword arguments of Integrator: seed, weights, states (arrays)
    doc: dict = field(default_factory=dict, repr=False)   # the parsed TOML, for references
    source: str = "<spec>"
    stream: StreamSpec = field(default_factory=StreamSpec)  # [stream]: columns, lags, scaling

    def __iter__(self):
        return iter((self.network, self.hyper, self.module, self.init))

    def derive(self, **override):
        from ..derive.hamiltonian import derive
        return derive(self.network, **{**self.hyper, **override})

    def generate(self, path, **override):
        from ..codegen.render import generate
        return generate(self.derive(), path, **{**self.module, **override})

    def load(self, path, **override):
        from ..codegen.render import load
        return load(self.derive(), path, **{**self.module, **override})


def _functions():
    """Callables an expression may use, by name: activations and reductions."""
    funcs = {name: (a, 1) for name, a in _act.BUILTIN.items()}
    for name, arity in (("sum_squares", 1), ("total", 1), ("softmax", 1), ("dot", 2),
                        ("softmax_cross_entropy", 2), ("mse", 2)):
        fn = getattr(_red, name, None)
        if fn is not None:
            funcs[name] = (fn, arity)
    return funcs


# -- expression strings -----------------------------------------------------------------------

class _Builder:
    """Rebuild a parsed expression from whitelisted nodes only. `names` and `functions` give
    the meaning of names and calls, so the same rules build hamsym expressions, SymPy
    activations (a subclass) and the PyTorch reference of `hamsym.workbench.check`."""

    def __init__(self, where, text, names, functions):
        # the parser hands over identifiers folded by NFKC (as Python reads them)
        self.where, self.text = where, text
        self.names = {**{folded(k): v for k, v in names.items()}, **names}
        self.functions = {**{folded(k): v for k, v in functions.items()}, **functions}
        self.declared, self.known = list(names), list(functions)
        self.size = {}          # id(ast node) -> nodes of its value written out as a tree

    def fail(self, node, message):
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1 + (self.indent if line == 1 else 0)
        at = f"column {col}" if line == 1 else f"line {line}, column {col}"
        raise SpecError(f"{self.where}, {at}: {message}\n    {self.text!r}")

    def build(self):
        if not isinstance(self.text, str):
            raise SpecError(f"{self.where}: expected an expression string, got "
                            f"{type(self.text).__name__} {self.text!r}")
        if len(self.text) > MAX_LENGTH:
            raise SpecError(f"{self.where}: expression of {len(self.text)} characters "
                            f"(at most {MAX_LENGTH})")
        if not self.text.strip():
            raise SpecError(f"{self.where}: empty expression")
        self.indent = len(self.text) - len(self.text.lstrip())   # columns count in the original
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as err:
            raise SpecError(f"{self.where}, column {(err.offset or 0) + self.indent}: not an expression: "
                            f"{err.msg}\n    {self.text!r}") from None
        except (ValueError, RecursionError, MemoryError) as err:
            raise SpecError(f"{self.where}: cannot parse the expression ({type(err).__name__})") \
                from None
        return self.node(tree.body, 0)

    def node(self, n, depth):
        value = self._node(n, depth)
        # hamsym walks expressions as trees, so a shared subexpression counts every time
        children = [self.size.get(id(c), 1) for c in ast.iter_child_nodes(n)]
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            size = abs(self.exponent(n.right)) * children[0] + 8
        else:
            size = 1 + sum(children)
        if size > MAX_NODES:
            self.fail(n, f"expression too large (more than {MAX_NODES} nodes written out)")
        self.size[id(n)] = size
        return value

    def _node(self, n, depth):
        if depth > MAX_DEPTH:
            self.fail(n, f"expression nested deeper than {MAX_DEPTH} levels")
        sub = lambda c: self.node(c, depth + 1)  # noqa: E731
        if isinstance(n, ast.Constant):
            v = n.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail(n, f"{type(v).__name__} constant {v!r} is not allowed; only numbers")
            return self.number(n, v)
        if isinstance(n, ast.Name):
            if n.id in self.names:
                return self.names[n.id]
            if n.id in self.functions:
                self.fail(n, f"`{n.id}` is a function: call it, e.g. {n.id}(...)")
            self.fail(n, f"unknown name `{n.id}`; declared: {', '.join(self.declared) or 'none'}")
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = sub(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            if isinstance(n.op, ast.Pow):
                return self.power(n, sub(n.left), self.exponent(n.right))
            ops = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__",
                   ast.Div: "__truediv__", ast.MatMult: "__matmul__"}
            if type(n.op) not in ops:
                self.fail(n, f"operator {type(n.op).__name__} is not allowed; "
                          "use + - * / @ ** and unary minus")
            left, right = sub(n.left), sub(n.right)
            if type(n.op) is ast.MatMult and (self.is_number(left) or self.is_number(right)):
                self.fail(n, "@ needs matrices or vectors on both sides")
            return self.combine(n, ops[type(n.op)], left, right)
        if isinstance(n, ast.Attribute):
            if n.attr != "T" or not isinstance(n.ctx, ast.Load):
                self.fail(n, f"attribute `.{n.attr}` is not allowed; only `.T` (transpose)")
            v = sub(n.value)
            if self.is_number(v) or not hasattr(v, "T"):
                self.fail(n, "`.T` needs a matrix or vector")
            return self.guard(n, lambda: v.T)
        if isinstance(n, ast.Call):
            return self.call(n, depth)
        what = type(n).__name__
        hints = {"Lambda": "lambdas", "ListComp": "comprehensions", "GeneratorExp": "generators",
                 "Subscript": "subscripts (indexing)", "JoinedStr": "f-strings",
                 "NamedExpr": "assignment expressions (:=)", "BoolOp": "and/or",
                 "Compare": "comparisons", "IfExp": "conditional expressions",
                 "Starred": "starred arguments", "List": "lists", "Tuple": "tuples",
                 "Dict": "dicts", "Set": "sets", "Await": "await", "Yield": "yield"}
        self.fail(n, f"{hints.get(what, what)} are not allowed in an expression")

    def exponent(self, n):
        value = n
        sign = 1
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            sign, value = -1, value.operand
        if not (isinstance(value, ast.Constant) and isinstance(value.value, int)
                and not isinstance(value.value, bool) and value.value <= MAX_EXPONENT):
            self.fail(n, f"the exponent of ** must be an integer literal from -{MAX_EXPONENT} "
                      f"to {MAX_EXPONENT}")
        return sign * value.value

    def power(self, n, base, k):
        if self.is_number(base):
            try:
                return self.number(n, base ** k)
            except ZeroDivisionError:
                self.fail(n, "0 to a negative power")
        if k < 1:
            return self.power_special(n, base, k)
        out = base
        for _ in range(k - 1):
            out = self.combine(n, "__mul__", out, base)
        return out

    def power_special(self, n, base, k):
        self.fail(n, "a non-number raised to a power below 1: write 1 / x instead of x ** -1")

    def is_number(self, v):
        return isinstance(v, numbers.Number) and not isinstance(v, sympy.Basic)

    def number(self, n, v):
        if isinstance(v, float) and not math.isfinite(v) or abs(v) > MAX_CONSTANT:
            self.fail(n, f"constant {v!r} is out of range (|c| <= {MAX_CONSTANT:g})")
        return v

    def combine(self, n, op, left, right):
        if self.is_number(left) and self.is_number(right):
            try:
                return self.number(n, getattr(left, op)(right))
            except ZeroDivisionError:
                self.fail(n, "division by zero")
        return self.guard(n, lambda: getattr(left, op)(right) if not self.is_number(left)
                          else getattr(right, "__r" + op[2:])(left))

    def call(self, n, depth):
        if not isinstance(n.func, ast.Name):
            self.fail(n, "only calls of known functions by name are allowed, e.g. tanh(x)")
        name = n.func.id
        if name not in self.functions:
            self.fail(n, f"unknown function `{name}`; known: {', '.join(self.known)}")
        if n.keywords:
            self.fail(n, f"{name}(...): keyword arguments are not allowed")
        if any(isinstance(a, ast.Starred) for a in n.args):
            self.fail(n, f"{name}(...): starred arguments are not allowed")
        fn, arity = self.functions[name]
        if len(n.args) != arity:
            self.fail(n, f"{name} takes {arity} argument{'s' * (arity > 1)}, got {len(n.args)}")
        args = [self.node(a, depth + 1) for a in n.args]
        return self.guard(n, lambda: fn(*args))

    def guard(self, n, make):
        try:
            return make()
        except SpecError:
            raise
        except DeclarationError as err:     # shapes and the like: hamsym's own message
            self.fail(n, str(err))


def parse_expression(text, names, *, where="expression", functions=None):
    """A hamsym expression from `text`, with `names` (str -> Var) the names it may use."""
    return _Builder(where, text, dict(names), functions or _functions()).build()


# -- custom activations: the same whitelist, building a SymPy expression in t -------------------

_T = _act.t
_SCALAR_FUNCTIONS = {"exp": sympy.exp, "log": sympy.log, "tanh": sympy.tanh, "sin": sympy.sin,
                     "cos": sympy.cos, "sqrt": sympy.sqrt, "atan": sympy.atan, "abs": sympy.Abs,
                     "sinh": sympy.sinh, "cosh": sympy.cosh, "erf": sympy.erf}


class _ScalarBuilder(_Builder):
    def is_number(self, v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def power_special(self, n, base, k):
        return self.guard(n, lambda: base ** k)

    def guard(self, n, make):
        try:
            return make()
        except SpecError:
            raise
        except (TypeError, ValueError, ArithmeticError) as err:
            self.fail(n, str(err))


def parse_activation(text, *, where="activation"):
    """A SymPy expression in t for a custom activation, from whitelisted syntax only."""
    names = {"t": _T, "pi": sympy.pi, "e": sympy.E}
    funcs = {k: (f, 1) for k, f in _SCALAR_FUNCTIONS.items()}
    expr = _ScalarBuilder(where, text, names, funcs).build()
    return sympy.sympify(expr) if isinstance(expr, (int, float)) else expr


# -- the file ---------------------------------------------------------------------------------

def load_spec(path):
    """Read a spec file: a `Spec` (network, hyper, module, init)."""
    path = regular_file(path, "spec file", SpecError, max_bytes=MAX_FILE)
    try:
        data = path.read_bytes()[:MAX_FILE + 1]
    except OSError as err:
        raise SpecError(f"spec file {path}: cannot read it: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise SpecError(f"{path}, line {line}: not UTF-8 text") from None
    return loads_spec(text, source=str(path))


def loads_spec(text, *, source="<spec>"):
    """Read a spec from a TOML string (`source` names it in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML: {err}") from None
    except RecursionError:
        raise SpecError(f"{source}: arrays or tables nested too deeply to read") from None
    return _Reader(doc, source).read()


class _Reader:
    def __init__(self, doc, source):
        self.doc, self.source = doc, source

    def fail(self, key, message):
        raise SpecError(f"{self.source}: {key}: {message}")

    def table(self, name):
        value = self.doc.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"expected a table [{name}], got {type(value).__name__}")
        return value

    def declare(self, key, make):
        try:
            return make()
        except SpecError:
            raise
        except DeclarationError as err:
            self.fail(key, str(err))

    def read(self):
        unknown = [k for k in self.doc if k not in _TOP]
        if unknown:
            self.fail(unknown[0], f"unknown key; known: {', '.join(_TOP)}")
        name = self.doc.get("name", "net")
        if not isinstance(name, str):
            self.fail("name", f"expected a string, got {name!r}")
        net = self.declare("name", lambda: Network(name))
        names = {h: var for h, var in HYPER.items()}
        functions = _functions()

        for act_name, body in self.table("activations").items():
            key = f"[activations] {act_name}"
            if act_name in functions:
                self.fail(key, f"`{act_name}` is already a known function")
            expr = parse_activation(body, where=f"{self.source}: {key}")
            act = self.declare(key, lambda: _act.activation(sympy.Lambda(_T, expr), name=act_name))
            functions[act_name] = (act, 1)

        for table, method in (("inputs", net.input), ("targets", net.target),
                              ("weights", net.weight), ("states", net.state)):
            for var_name, size in self.table(table).items():
                key = f"[{table}] {var_name}"
                if isinstance(size, list):
                    size = tuple(size)
                if var_name in functions:
                    self.fail(key, f"`{var_name}` is the name of a function")
                names[var_name] = self.declare(key, lambda: method(var_name, size))
        for var_name, default in self.table("params").items():
            key = f"[params] {var_name}"
            if var_name in functions:
                self.fail(key, f"`{var_name}` is the name of a function")
            names[var_name] = self.declare(key, lambda: net.param(var_name, default))

        def expression(key, text):
            where = f"{self.source}: {key}"
            return _Builder(where, text, names, functions).build()

        for var_name, text in self.table("instants").items():
            key = f"[instants] {var_name}"
            if var_name in functions:
                self.fail(key, f"`{var_name}` is the name of a function")
            expr = expression(key, text)
            names[var_name] = self.declare(key, lambda: net.instant(var_name, expr))
        dynamics = self.table("dynamics")
        for var_name, text in dynamics.items():
            key = f"[dynamics] {var_name}"
            state = names.get(var_name)
            if state is None or state.kind != "state":
                self.fail(key, f"`{var_name}` is not declared in [states]")
            f = expression(key, text)
            self.declare(key, lambda: net.dynamics(state, f))
        if "loss" not in self.doc:
            self.fail("loss", 'missing: give the loss as a top-level key, loss = "..." '
                      "(before the first table)")
        loss = expression("loss", self.doc["loss"])
        self.declare("loss", lambda: net.loss(loss))
        self.declare("[dynamics]", net.check_complete)
        return Spec(net, self.hyper(net), self.module(), self.init(), self.doc, self.source,
                    stream=read_table(self.table("stream"), self.source, self.fail))

    def hyper(self, net):
        from ..derive.hamiltonian import DEFAULTS, _hyper_values
        hyper, self.per_weight = per_weight_spec.read(
            dict(self.table("hyper")), [w.name for w in net.of_kind("weight")], self.fail)
        for key in hyper:
            if key not in DEFAULTS:
                self.fail(f"[hyper] {key}", f"unknown hyperparameter; known: {', '.join(DEFAULTS)}")
        self.declare("[hyper]", lambda: _hyper_values(net, dict(hyper)))
        return hyper

    def module(self):
        options = dict(self.table("module"))
        for key, value in options.items():
            if key not in _MODULE_OPTIONS:
                self.fail(f"[module] {key}", f"unknown option; known: {', '.join(_MODULE_OPTIONS)}")
        if "groups" in options:
            groups = options["groups"]
            if not (isinstance(groups, list) and all(isinstance(g, list) and
                                                     all(isinstance(s, str) for s in g)
                                                     for g in groups)):
                self.fail("[module] groups", 'expected a list of lists of state names, '
                          'e.g. [["x1", "x2"], ["x3"]]')
            options["groups"] = [list(g) for g in groups]
        if self.per_weight:             # [hyper.<weight>] tables: the generator's option
            options["per_weight"] = self.per_weight
        for key in ("reset_neuron_costate", "reset_weight_costate", "fresh_weight_costate"):
            if key in options and not isinstance(options[key], bool):
                self.fail(f"[module] {key}", f"expected true or false, got {options[key]!r}")
        for key, allowed in (("scheme", ("local", "nonlocal", "partial")),
                             ("dtype", ("float64", "float32"))):
            if key in options and options[key] not in allowed:
                self.fail(f"[module] {key}", f"expected one of {', '.join(allowed)}, "
                          f"got {options[key]!r}")
        return options

    def init(self):
        import numpy as np
        table = dict(self.table("init"))
        out = {}
        for key, value in table.items():
            if key == "seed":
                if not isinstance(value, int) or isinstance(value, bool) or \
                        not 0 <= value <= MAX_SEED:
                    self.fail("[init] seed", f"expected an integer from 0 to 2**63 - 1, "
                              f"got {value!r}")
                out["seed"] = value
            elif key in ("weights", "states"):
                if not isinstance(value, dict):
                    self.fail(f"[init] {key}", "expected a table of name = number or list")
                arrays = {}
                for var_name, v in value.items():
                    try:
                        arr = np.asarray(v, dtype=float)
                    except (TypeError, ValueError):
                        self.fail(f"[init.{key}] {var_name}", "expected a number or a list of numbers")
                    if not np.all(np.isfinite(arr)):
                        self.fail(f"[init.{key}] {var_name}", "values must be finite")
                    arrays[var_name] = arr
                out[key] = arrays
            else:
                self.fail(f"[init] {key}", "unknown key; known: seed, weights, states")
        return out


def integrator(spec, module, **kwargs):
    """An Integrator of `module` started as the spec's [init] says (a number fills the array)."""
    return module.Integrator(**{**initial(spec, module), **kwargs})


def initial(spec, module):
    """The spec's [init] as keyword arguments of module.Integrator or module.Ensemble:
    seed, and weights and states by name (a number fills the array)."""
    import numpy as np
    given = {"seed": spec.init["seed"]} if "seed" in spec.init else {}
    for kind, declared in (("weights", module.WEIGHTS), ("states", module.STATES)):
        arrays = {}
        for name, arr in spec.init.get(kind, {}).items():
            key = f"{spec.source}: [init.{kind}] {name}"
            if name not in declared:
                raise SpecError(f"{key}: not one of the {kind} {list(declared)}")
            shape = tuple(declared[name])
            if arr.ndim == 0:
                arrays[name] = np.full(shape, float(arr))
            elif arr.size == int(np.prod(shape)):
                arrays[name] = arr.reshape(shape)
            else:
                raise SpecError(f"{key}: {arr.size} values for an array of shape {shape}")
        if arrays:
            given[kind] = arrays
    return given
