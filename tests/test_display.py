"""What a notebook user sees: SymPy objects, LaTeX and text for the derived system."""

import sympy

import hamsym as hs
from hamsym.declare.zoo import mlp, recurrent


def test_system_as_sympy_latex_and_text():
    system = hs.derive(mlp([3, 4, 2], name="show"), theta=0.2)
    eqs = system.sympy()
    assert all(isinstance(e, sympy.Eq) for e in eqs)
    p_w1 = next(e for e in eqs if str(e.lhs) == "Derivative(p_W1, t)")
    assert p_w1.rhs.free_symbols >= {sympy.Symbol("theta", real=True), sympy.Symbol("flip", real=True)}
    H = hs.to_sympy(system.hamiltonian)
    assert isinstance(H, sympy.Expr) and sympy.Symbol("gamma", real=True) in H.free_symbols
    latex = system.latex()
    assert latex.startswith("\\begin{aligned}") and "\\tanh'" in latex and "p_{W_{1}}" in latex
    assert system._repr_latex_().startswith("$$")
    assert system.equation("p_W1")._repr_latex_().startswith("$")
    text = str(system)
    assert "v_W1 = -beta*p_W1" in text and "p_W1' = flip*(theta/delta*p_W1" in text


def test_costate_equations_are_in_matrix_form():
    """Transposes, Hadamard products and outer products, not per-element sums."""
    system = hs.derive(recurrent(2, 3, 1, kind="continuous", name="show_rnn"))
    rhs = str(system.equation("p_A").rhs)
    assert "@ x.T" in rhs and "tanh'(" in rhs and "[" not in rhs
    assert "A.T @" in str(system.equation("p_x").rhs)
