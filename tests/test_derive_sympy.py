"""derive() against docs/mathematics.md, sections 2-4, recomputed with plain sympy.diff
on scalars.

For each network of ``scalar_reference.NETWORKS`` the Hamiltonian is rebuilt from
its definition (section 2) over scalars,

    H* = gamma*l + sum_x p_x . f_x - beta/2 sum_w |p_w|^2,

and every equation hamsym derives is compared with what the definitions give:

    state   x'   = dH*/dp_x
    weight  w'   = dH*/dp_w                       (= -beta p_w)
    costate p_x' = flip * (theta_neurons/delta * p_x - dH*/dx)
    costate p_w' = flip * (theta/delta * p_w - dH*/dw)

Every name gets a seeded random value. hamsym's right-hand sides are expanded
(``System.expand``) and evaluated entry by entry with the scalar reference; each
derivative of H* is ``sympy.diff`` by one scalar symbol, the other scalars already
at their values (the same partial derivative, without the blow-up of fully
symbolic deep networks). Everything agrees to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import hamsym as hs
from hamsym.declare import expr as E
from hamsym.declare.rewrite import walk
from scalar_reference import NETWORKS, ScalarReference, flat, grad, names_of, random_values

SEED = 6
TOL = 1e-12


def inner(a, b):
    return sum((x * y for x, y in zip(flat(a), flat(b))), sympy.Integer(0))


def labels(name, shape):
    """The scalar labels of a name, as ScalarReference spells them, with their index."""
    if shape == ():
        return [((), name)]
    rows, cols = shape
    return [((i, j), f"{name}[{i}]" if cols == 1 else f"{name}[{i},{j}]")
            for i in range(rows) for j in range(cols)]


class Case:
    """One network, its derived system and the scalar reference at a random point."""

    def __init__(self, name):
        self.name = name
        self.net = net = NETWORKS[name]()
        self.system = hs.derive(net, gamma=1.0, beta=1.0, theta=0.5, flip=-1)
        self.states, self.weights = net.of_kind("state"), net.of_kind("weight")
        self.names = names_of(net)
        self.values = random_values(self.names, SEED)
        self.numeric = ScalarReference(net, self.values)      # every scalar a number
        self._dH = {}

    def reference(self, *keep):
        """A reference where the names/entries in keep stay symbols, the rest are numbers."""
        return ScalarReference(self.net, self.values, keep)

    def hamiltonian(self, ref, full=False):
        """H* (or, with full, H with the controls v_w) from their definition."""
        net = self.net
        gamma, beta = ref.hyper("gamma"), ref.hyper("beta")
        p = {v.name: ref.leaf(f"p_{v.name}", v.shape, "costate") for v in self.states + self.weights}
        H = gamma * ref(net.loss_expr)
        for x in self.states:
            H += inner(p[x.name], ref(net.dynamics_of[x.name]))
        for w in self.weights:
            if full:
                v = ref.leaf(f"v_{w.name}", w.shape, "control")
                H += inner(p[w.name], v) + inner(v, v) / (2 * beta)
            else:
                H -= beta / 2 * inner(p[w.name], p[w.name])
        return H

    def dH(self, name):
        """dH*/d name at the point (float array), one sympy.diff per scalar entry."""
        if name not in self._dH:
            shape = self.names[name][0]
            out = np.empty(shape)
            for index, label in labels(name, shape):
                ref = self.reference(label)
                out[index] = ref.numbers(sympy.diff(self.hamiltonian(ref), sympy.Symbol(label)))
            self._dH[name] = out
        return self._dH[name]

    def got(self, expr):
        """A hamsym expression (messages and instants expanded) as floats at the point."""
        return self.numeric.numbers(self.numeric(self.system.expand(expr)))

    def value(self, name):
        return np.asarray(self.values[name])


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def case(request):
    return Case(request.param)


def assert_close(label, got, want, tol=TOL):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, expected {want.shape}"
    assert np.all(np.isfinite(want)), f"{label}: reference is not finite"
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert err <= tol, f"{label}: max abs error {err:.3g}\n got  {got.ravel()}\n want {want.ravel()}"


# -- the shape of what derive() returns ----------------------------------------------------

def test_one_equation_per_state_weight_and_costate(case):
    s, net = case.system, case.net
    kinds = {eq.lhs.name: eq.kind for eq in s.equations}
    want = {x.name: "state" for x in case.states}
    want.update({w.name: "weight" for w in case.weights})
    want.update({f"p_{v.name}": "costate" for v in case.states + case.weights})
    assert kinds == want
    assert len(s.equations) == len(want)
    for v in case.states + case.weights:
        p = s.costates[v]
        assert (p.name, p.shape, p.kind) == (f"p_{v.name}", v.shape, "costate")
        eq = s.equation(v.name)
        assert eq.lhs == v and eq.rhs.shape == v.shape
        assert s.equation(p.name).lhs == p and s.equation(p.name).rhs.shape == v.shape
    assert s.hamiltonian.shape == () and s.hamiltonian_full.shape == ()
    # instants carry no state and no costate (docs/mathematics.md, section 1)
    assert not set(net.instants) & set(kinds)


# -- the equations, against sympy.diff of the scalar Hamiltonian ------------------------------

def test_reduced_and_full_hamiltonian(case):
    s, ref = case.system, case.numeric
    assert_close("H*", case.got(s.hamiltonian), ref.numbers(case.hamiltonian(ref)))
    assert_close("H", case.got(s.hamiltonian_full), ref.numbers(case.hamiltonian(ref, full=True)))


def test_state_and_weight_equations(case):
    """x' = dH*/dp_x and w' = dH*/dp_w, the latter exactly -beta p_w."""
    for v in case.states + case.weights:
        assert_close(f"{v.name}'", case.got(case.system.equation(v.name).rhs), case.dH(f"p_{v.name}"))
    for w in case.weights:
        ref = case.reference(f"p_{w.name}", "beta")
        p, beta = ref.leaf(f"p_{w.name}", w.shape, "costate"), ref.hyper("beta")
        assert ref(case.system.expand(case.system.equation(w.name).rhs)) == -beta * p
        assert grad(case.hamiltonian(ref), p) == -beta * p


def test_costate_equations(case):
    v_ = case.values
    for v in case.states + case.weights:
        theta = v_["theta_neurons" if v.kind == "state" else "theta"]
        p = case.value(f"p_{v.name}")
        want = v_["flip"] * (theta / v_["delta"] * p - case.dH(v.name))
        assert_close(f"p_{v.name}'", case.got(case.system.equation(f"p_{v.name}").rhs), want)


def test_gradients(case):
    for v in case.states + case.weights:
        assert_close(f"dH/d{v.name}", case.got(case.system.gradients[v]), case.dH(v.name))


def test_control_law(case):
    """dH/dv = 0 gives v* = -beta p_w; H at v* is H*; it is a minimum."""
    s = case.system
    keep = ["beta"] + [f"{k}_{w.name}" for w in case.weights for k in ("p", "v")]
    ref = case.reference(*keep)
    beta = ref.hyper("beta")
    assert [eq.lhs.name for eq in s.control_law] == [f"v_{w.name}" for w in case.weights]
    assert all(eq.kind == "control" and eq.lhs.kind == "control" for eq in s.control_law)
    H_full, H = ref(s.expand(s.hamiltonian_full)), ref(s.expand(s.hamiltonian))
    v = {w.name: ref.leaf(f"v_{w.name}", w.shape, "control") for w in case.weights}
    p = {w.name: ref.leaf(f"p_{w.name}", w.shape, "costate") for w in case.weights}
    controls = [c for w in case.weights for c in flat(v[w.name])]
    (solution,) = sympy.solve([sympy.diff(H_full, c) for c in controls], controls, dict=True)
    for w, eq in zip(case.weights, s.control_law):
        v_star = v[w.name].xreplace(solution)
        assert v_star == -beta * p[w.name], w.name
        assert ref(s.expand(eq.rhs)) == v_star, w.name
    for c in controls:
        assert sympy.diff(H_full, c, 2) == 1 / beta
    assert sympy.expand(H_full.xreplace(solution) - H) == 0


# -- the random point is a fair one ------------------------------------------------------------

def _piecewise_args(net):
    exprs = [net.loss_expr, *net.dynamics_of.values(), *net.instants.values()]
    return [n.args[0] for e in exprs for n in walk(e)
            if isinstance(n, E.Apply) and n.activation.expr.has(sympy.Piecewise)]


@pytest.mark.parametrize("name", [n for n in sorted(NETWORKS) if _piecewise_args(NETWORKS[n]())])
def test_point_is_away_from_kinks(name):
    """relu's derivative jumps at 0: keep every pre-activation of a Piecewise activation
    clearly away from it, so the numeric comparisons above are meaningful."""
    case = Case(name)
    net, ref = case.net, case.numeric
    args = _piecewise_args(net)
    values = [ref.numbers(ref(a)) for a in args]
    assert min(float(np.min(np.abs(v))) for v in values) > 1e-3
    # and relu is active on some units and off on others
    assert any(np.any(v > 0) for v in values) and any(np.any(v < 0) for v in values)
