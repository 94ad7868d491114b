"""The LaTeX means what the code computes: every printed equation is parsed back with
SymPy's own LaTeX parser (ANTLR backend) and compared with the SymPy form of the
same equation (``system.sympy()``, ``hs.to_sympy``).

How the comparison keeps precedence errors visible:

- Matrices and vectors become *noncommutative* symbols while the parser builds its
  expression (scalars stay commutative), so ``A (x + b)`` and ``A x + b``, ``(A x)^T``
  and ``A x^T`` differ, and the order of matrix factors is kept.
- ``\\circ`` (Hadamard) is read as a product of its own (``Had``), binding more loosely
  than juxtaposition, as the LaTeX convention says; so an unparenthesized
  ``(a \\circ b) x^T`` printed as ``a \\circ b x^T`` parses as ``a \\circ (b x^T)`` and fails.
- The reference side maps SymPy's matrix expressions onto the same algebra
  (MatMul -> noncommutative product, Transpose -> ``^T``, ...); equality is checked
  after expansion, so only a different *meaning* fails, never a different layout.

The few notations the parser does not know are renamed before parsing, each one
delimited on both sides so that the renaming cannot change what groups with what:
``\\left\\| x \\right\\|^2`` -> ``Norm(x)^2``, ``\\left\\langle A, B \\right\\rangle`` ->
``Inner(A, B)``, ``\\frac{\\partial H}{\\partial h}`` -> a symbol, ``\\mathbf{1}`` -> a
symbol, ``f\\left(x\\right)`` -> an undefined function ``Ff(x)``, and grouping
parentheses -> brackets (the parser would read ``\\gamma \\left(x\\right)`` as a function).
"""

from __future__ import annotations

import contextlib
import re

import pytest
import sympy
from sympy.core.sorting import default_sort_key
from sympy.matrices.expressions import (HadamardProduct, MatAdd, MatMul, MatrixSymbol, OneMatrix,
                                        Transpose, ZeroMatrix)
from sympy.parsing.latex import parse_latex
import sympy.parsing.latex._parse_latex_antlr as antlr_parse

import hamsym as hs
from hamsym.declare import expr as E
from hamsym.declare import sympy_form as F
from hamsym import zoo
from hamsym.declare.rewrite import walk

T = sympy.Symbol("T")
ONE = sympy.Symbol("One", commutative=False)


class Had(sympy.Function):
    """The Hadamard product: associative and commutative, numbers and scalars move out."""

    def _eval_is_commutative(self):
        return False

    @classmethod
    def eval(cls, *args):
        scalars, flat = [], []
        for a in args:
            for b in (a.args if isinstance(a, Had) else (a,)):
                c, nc = b.args_cnc() if isinstance(b, sympy.Mul) else ([], [b])
                scalars += c
                flat.append(sympy.Mul(*nc))
        flat = sorted(flat, key=default_sort_key)
        if scalars:
            return sympy.Mul(*scalars) * cls(*flat)
        if tuple(flat) != args:
            return cls(*flat)
        return None


def function_name(latex):
    r"""\tanh -> Ftanh, \operatorname{relu}' -> Frelu' (the name the parser gives a call)."""
    m = re.fullmatch(r"\\(?:operatorname\{(\w+)\}|(\w+))('*)", latex)
    return "F" + (m.group(1) or m.group(2)) + m.group(3)


# -- the reference: SymPy's form on the parser's algebra --------------------------------------

def reference(e):
    """The SymPy form mapped onto noncommutative symbols (matrices), ^T, Had, functions."""
    if isinstance(e, MatrixSymbol):
        return sympy.Symbol(e.name, commutative=False)
    if isinstance(e, sympy.Symbol):
        return sympy.Symbol(e.name)
    if isinstance(e, ZeroMatrix):
        return sympy.Integer(0)
    if isinstance(e, OneMatrix):
        return ONE
    if e.is_Number:
        return e
    args = [reference(a) for a in e.args] if not isinstance(e, F.Elementwise) else None
    if isinstance(e, (MatMul, sympy.Mul)):
        return sympy.Mul(*args)
    if isinstance(e, (MatAdd, sympy.Add)):
        return sympy.Add(*args)
    if isinstance(e, sympy.Pow):
        return sympy.Pow(*args)
    if isinstance(e, Transpose):
        return sympy.Pow(args[0], T)
    if isinstance(e, HadamardProduct):
        return Had(*args)
    if isinstance(e, F.Elementwise):
        return sympy.Function(function_name(e.args[1].name))(reference(e.args[2]))
    if isinstance(e, F.SquaredNorm):
        return sympy.Function("FNorm")(args[0]) ** 2
    if isinstance(e, F.InnerProduct):
        a, b = args
        return a ** T * b if e.args[0].shape[1] == 1 else sympy.Function("FInner")(a, b)
    if isinstance(e, F.EntrySum):
        (x,) = args
        return ONE ** T * x if e.args[0].shape[1] == 1 else ONE ** T * x * ONE
    if isinstance(e, F.SoftmaxOf):
        return sympy.Function("Fsoftmax")(args[0])
    if isinstance(e, F.CrossEntropyOf):
        return sympy.Function("FCE")(*args)
    raise TypeError(f"no reference for {type(e).__name__}: {e}")


# -- the parsed side ----------------------------------------------------------------------------

def _braced(s, i):
    """Content of the {...} group starting at s[i], and the index after it."""
    assert s[i] == "{", s[i:]
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1:j], j + 1
    raise ValueError(f"unbalanced braces in {s!r}")


def parseable(tex):
    """Rename what SymPy's parser does not know, each rename delimited on both sides."""
    out, i = [], 0
    while (k := tex.find(r"\frac{\partial H}{\partial ", i)) >= 0:     # messages -> symbols
        _, end = _braced(tex, k + len(r"\frac{\partial H}"))
        name = tex[k + len(r"\frac{\partial H}{\partial "):end - 1]
        out += [tex[i:k], rf"\msg_{{{name}}}"]
        i = end
    tex = "".join(out) + tex[i:]
    tex = tex.replace(r"\mathbf{1}", r"\One")
    tex = re.sub(r"\\(?:operatorname\{(\w+)\}|([A-Za-z]+))('*)\\left\(",      # f(x) -> Ff(x)
                 lambda m: rf"\F{m.group(1) or m.group(2)}{m.group(3)}\left(", tex)
    tex = tex.replace(r"\left\langle", r"\FInner\left(").replace(r"\right\rangle", r"\right)")
    tex = tex.replace(r"\left\|", r"\FNorm\left(").replace(r"\right\|", r"\right)")
    # grouping parentheses -> brackets; a call's own parentheses stay
    pieces, stack = re.split(r"(\\left\(|\\right\))", tex), []
    for n, piece in enumerate(pieces):
        if piece == r"\left(":
            call = re.search(r"\\F\w+'*$", pieces[n - 1]) is not None
            stack.append(call)
            pieces[n] = piece if call else r"\left["
        elif piece == r"\right)":
            pieces[n] = piece if stack.pop() else r"\right]"
    assert not stack, tex
    return "".join(pieces).replace(r"\circ", r"\div")


class _SympyForParser:
    """Stands in for the sympy module inside SymPy's LaTeX parser: the names of matrices
    become noncommutative symbols as they are read, so products keep their order."""

    def __init__(self, matrices):
        self.matrices = set(matrices) | {ONE.name}

    def __getattr__(self, name):
        return getattr(sympy, name)

    def Symbol(self, name, **kw):  # noqa: N802 (SymPy's name)
        return sympy.Symbol(name, commutative=name not in self.matrices)


def _convert_mp_with_hadamard(convert_mp):
    r"""\circ is printed to \div before parsing; read it as the Hadamard product."""
    def convert(mp):
        if mp.CMD_DIV():
            sides = (mp.mp(0), mp.mp(1)) if hasattr(mp, "mp") else (mp.mp_nofunc(0), mp.mp_nofunc(1))
            return Had(*(convert(side) for side in sides))
        return convert_mp(mp)
    return convert


@contextlib.contextmanager
def _parser(matrices):
    saved = antlr_parse.sympy, antlr_parse.convert_mp
    antlr_parse.sympy = _SympyForParser(matrices)
    antlr_parse.convert_mp = _convert_mp_with_hadamard(saved[1])
    try:
        yield
    finally:
        antlr_parse.sympy, antlr_parse.convert_mp = saved


def _rebuild(e):
    """Evaluate the parser's unevaluated tree (order of noncommutative factors is kept)."""
    return e.func(*(_rebuild(a) for a in e.args)) if e.args and not e.is_Atom else e


class Reader:
    """Parses LaTeX printed with `names` (SymPy symbol -> LaTeX) back to the reference algebra."""

    def __init__(self, names):
        self.matrices, self.rename = set(), {}
        for sym, tex in names.items():
            parsed = parse_latex(parseable(tex))
            assert isinstance(parsed, sympy.Symbol), f"the name {tex!r} of {sym} reads as {parsed}"
            assert parsed.name not in self.rename, f"{tex!r} reads like another name"
            assert parsed.name != "T" and not parsed.name.startswith(("F", "One")), parsed
            if isinstance(sym, MatrixSymbol):
                self.matrices.add(parsed.name)
            self.rename[parsed.name] = reference(sym)

    def __call__(self, tex):
        with _parser(self.matrices):
            e = _rebuild(parse_latex(parseable(tex)))
        return e.xreplace({s: self.rename.get(s.name, s) for s in e.free_symbols})


def same(parsed, want):
    return sympy.expand(parsed - want) == 0


# -- every equation of every zoo network ----------------------------------------------------------

ZOO = {
    "mlp": lambda: zoo.mlp([3, 4, 2]),
    "mlp_sigmoid_relu_ce": lambda: zoo.mlp([3, 4, 3, 2], [hs.sigmoid, hs.relu], loss="cross_entropy"),
    "delay": lambda: zoo.delay_network([2, 3, 2]),
    "rnn_discrete": lambda: zoo.recurrent(2, 3, 1, kind="discrete"),
    "rnn_continuous": lambda: zoo.recurrent(2, 3, 1, kind="continuous"),
    "oscillators": lambda: zoo.oscillator_bank(2),
}


def hand_made():
    """Nested sums, products, transposes, every reduction, an activation of the user's own."""
    net = hs.Network("hand")
    u, y = net.input("u", 3), net.target("y", 2)
    A, B, b = net.weight("A", (2, 3)), net.weight("B", (3, 3)), net.weight("b", 2)
    Wab = net.weight("Wab", (3, 3))
    tau, k = net.param("tau", 2.0), net.param("k", 0.5)
    x = net.state("x", 3)
    cube = hs.activation(lambda t: t ** 3 / 3 + t, name="cubic")
    net.dynamics(x, hs.sigmoid(B @ x + A.T @ (A @ u - b)) * (x - u) / (tau + k)
                 - Wab @ (x * cube(u - x)) - x @ ((B @ x).T @ u))
    h = net.instant("h", hs.relu(A @ (x * hs.tanh(B.T @ x)) + b) - (A @ x) * (b - y))
    net.loss(hs.sum_squares(h - y) / 2 + 0.1 * hs.total(Wab * Wab) + hs.dot(B, Wab)
             + hs.softmax_cross_entropy(h, y) - k * hs.total(h) * hs.dot(x, u))
    return net


CASES = dict(ZOO, hand=hand_made)


@pytest.fixture(scope="module", params=sorted(CASES))
def system(request):
    return hs.derive(CASES[request.param]())


def rows(latex):
    body = latex.split("\\begin{aligned}\n")[1].split("\n\\end{aligned}")[0]
    return [r.split(" &= ", 1) for r in body.split(" \\\\\n") if " &= " in r]


def test_every_printed_equation_means_its_sympy_form(system):
    read = Reader(system._symbol_names())
    got = rows(system.latex())
    want = [("H", hs.to_sympy(system.hamiltonian_full)),
            ("H^{*}", hs.to_sympy(system.hamiltonian_reduced))] + \
        [(eq.lhs, eq.rhs) for eq in system.sympy()]
    assert len(got) == len(want)
    for (lhs_tex, rhs_tex), (lhs, rhs) in zip(got, want):
        if isinstance(lhs, sympy.Derivative):
            m = re.fullmatch(r"\\dot\{(.*)\}", lhs_tex)
            assert m, lhs_tex
            assert same(read(m.group(1)), reference(lhs.expr)), lhs_tex
        elif isinstance(lhs, str):
            assert lhs_tex == lhs
        else:
            assert lhs_tex.startswith("{") and lhs_tex.endswith("}"), lhs_tex
            assert same(read(lhs_tex[1:-1]), reference(lhs)), lhs_tex
        assert same(read(rhs_tex), reference(rhs)), f"{lhs_tex} = {rhs_tex}\n  means {read(rhs_tex)}" \
                                                    f"\n  not   {reference(rhs)}"


def test_legend_says_what_s_theta_and_h_star_are(system):
    tex, text = system.latex(), str(system)
    assert r"s = \pm 1" in tex and r"\theta_{\xi}" in tex and r"H^{*} = \min_{v} H" in tex
    assert "flip = s = +1 or -1" in text and "theta_neurons: per-step decay" in text
    assert "reduced Hamiltonian" in text
    assert system.hamiltonian_reduced is system.hamiltonian


# -- hand-made expressions through hs.latex --------------------------------------------------------

def _expressions():
    u, x, b = E.Var("u", (3, 1), "input"), E.Var("x", (3, 1), "state"), E.Var("b", (3, 1), "weight")
    A, B = E.Var("A", (3, 3), "weight"), E.Var("B", (3, 3), "weight")
    g, k = E.Var("gamma", (), "hyper"), E.Var("kappa", (), "param")
    ones = E.Ones((3, 1))
    return {
        "transpose of a sum": (x + u).T @ (A @ x),
        "transpose of a product": (A @ x).T @ (B.T @ u),
        "transpose of a Hadamard product": (x * u).T @ B,
        "transpose of an activation": hs.tanh(x).T @ A,
        "scale by a sum": (g + k) * (A @ x - u),
        "divide by a sum": (x - b) / (g + k),
        "negated Hadamard in a sum": u - x * (A @ u),
        "Hadamard of products": (A @ x) * (B @ (u - x)),
        "Hadamard inside a product": A @ (x * u) + b @ ((x * u).T @ u),
        "nested Hadamard": (x * (u * b)) * hs.sigmoid(x),
        "inner of a sum": hs.dot(x, u - A @ x) * (x + b),
        "inner times inner": hs.dot(x, u) * hs.dot(b, A @ x) - g,
        "matrix inner and norm": hs.dot(A, B - A) / 2 + hs.sum_squares(A.T @ (x + u)),
        "sums of entries": hs.total(A @ B) + hs.total(x - u),
        "ones and softmax": ones * g - hs.softmax(x + ones) + E.Zero((3, 1)),
        "cross-entropy": hs.softmax_cross_entropy(A @ x, u) - 2.5 * hs.dot(x, x),
        "negative numbers": -2 * (x - 3 * u) - E.Const(-1) * (A @ b),
        "transposed message": (b - x) @ (E.Var("dH_dh", (3, 1), "message").T @ (x * u)) / (g - k),
    }


@pytest.mark.parametrize("label", sorted(_expressions()))
def test_hand_made_expressions(label):
    e = _expressions()[label]
    variables = [n for n in walk(e) if isinstance(n, E.Var)]
    read = Reader(F.symbol_names(variables))
    tex = hs.latex(e)
    assert same(read(tex), reference(hs.to_sympy(e))), f"{label}: {tex}\n  means {read(tex)}"


# -- the test can fail: it catches the precedence bugs it is meant for --------------------------------

@pytest.mark.parametrize("wrong, right", [
    # the old rendering of the recurrent network's coupling term
    (r"\frac{p_{x}^{T} \tanh\left(A x\right) - x}{\tau}",
     r"\frac{p_{x}^{T} \left(\tanh\left(A x\right) - x\right)}{\tau}"),
    (r"p_{x} \circ \tanh'\left(A x\right) x^{T}", r"\left(p_{x} \circ \tanh'\left(A x\right)\right) x^{T}"),
    (r"A x^{T}", r"\left(A x\right)^{T}"),
    (r"- A x + x", r"- \left(A x + x\right)"),
    (r"\frac{1}{\tau} A x - x", r"\frac{1}{\tau} \left(A x - x\right)"),
])
def test_misplaced_parentheses_are_caught(wrong, right):
    p_x, A, x = (E.Var(n, (3, 1) if n != "A" else (3, 3), "costate" if n == "p_x" else "state")
                 for n in ("p_x", "A", "x"))
    tau = E.Var("tau", (), "param")
    read = Reader(F.symbol_names([p_x, A, x, tau]))
    assert not same(read(wrong), read(right))


def test_names_of_several_letters_read_as_one_symbol():
    ca = E.Var("Ca", (1, 2), "weight")
    assert hs.latex(ca) == r"\mathit{Ca}"
    Reader(F.symbol_names([ca, E.Var("p_Ca", (1, 2), "costate")]))       # asserts one symbol each
    assert isinstance(parse_latex("Ca"), sympy.Mul)                       # what plain "Ca" would mean
