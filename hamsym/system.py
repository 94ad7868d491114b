"""The derived Hamiltonian system: what `derive` returns.

It holds the Hamiltonian (full and reduced), the control law, one equation per
state, weight and costate, and the backward messages dH/dh of the instantaneous
neurons. Everything is available three ways: hamsym expressions (what the code
generator reads), SymPy objects (``.sympy()``, to manipulate), and text/LaTeX
(``print(system)``, ``system.latex()``, rendered in Jupyter).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .expr import Var
from .rewrite import expand
from .sympy_form import to_sympy


TIME = sympy.Symbol("t", real=True)


def latex_name(var):
    """How a name reads in equations: W1 -> W_{1}, p_W1 -> p_{W_{1}}, dH_dh -> dH/dh."""
    base = lambda name: sympy.latex(sympy.Symbol(name))  # noqa: E731
    if var.kind == "costate":
        return f"p_{{{base(var.name[2:])}}}"
    if var.kind == "control":
        return f"v_{{{base(var.name[2:])}}}"
    if var.kind == "message":
        return f"\\frac{{\\partial H}}{{\\partial {base(var.name[4:])}}}"
    return {"theta_neurons": r"\theta_{\xi}", "flip": "s"}.get(var.name, base(var.name))


@dataclass(frozen=True)
class Equation:
    """lhs' = rhs (kind: state, weight, costate, control; a control law reads lhs = rhs)."""

    lhs: Var
    rhs: object
    kind: str

    def sympy(self):
        lhs = to_sympy(self.lhs)
        if self.kind not in ("control", "message"):
            lhs = sympy.Derivative(lhs, TIME, evaluate=False)
        return sympy.Eq(lhs, to_sympy(self.rhs), evaluate=False)

    def latex(self, names=None):
        dot = "" if self.kind in ("control", "message") else "\\dot"
        lhs = f"{dot}{{{latex_name(self.lhs)}}}"
        return f"{lhs} &= {sympy.latex(to_sympy(self.rhs), symbol_names=names or {})}"

    def _repr_latex_(self):
        return "$" + self.latex().replace("&=", "=") + "$"

    def __str__(self):
        prime = "" if self.kind in ("control", "message") else "'"
        return f"{self.lhs.name}{prime} = {self.rhs}"


@dataclass(frozen=True)
class System:
    net: object
    hyper: dict
    hamiltonian: object
    hamiltonian_full: object
    control_law: list
    equations: list
    gradients: dict
    messages: list
    costates: dict

    # -- access -------------------------------------------------------------------------
    def equation(self, name):
        """The equation whose left side is `name` (a state, weight or costate p_<name>)."""
        for eq in self.equations:
            if eq.lhs.name == name:
                return eq
        raise KeyError(f"no equation for {name!r}; have {[e.lhs.name for e in self.equations]}")

    def expand(self, expr):
        """expr with backward messages and instantaneous neurons substituted away."""
        table = {m: e for m, e in self.messages}
        table.update({self.net.vars[n]: e for n, e in self.net.instants.items()})
        return expand(expr, table)

    def sympy(self):
        """All equations as SymPy Eq objects: control law, messages, then the dynamics."""
        return [eq.sympy() for eq in self._lines()]

    # -- display --------------------------------------------------------------------------
    def _lines(self):
        instants = [Equation(self.net.vars[n], e, "message") for n, e in self.net.instants.items()]
        messages = [Equation(m, e, "message") for m, e in self.messages]
        return instants + list(self.control_law) + messages + list(self.equations)

    def _symbol_names(self):
        names = {}
        for v in list(self.net.vars.values()) + list(self.costates.values()) + \
                [m for m, _ in self.messages] + [eq.lhs for eq in self.control_law]:
            names[to_sympy(v)] = latex_name(v)
        for n in ("theta_neurons", "flip"):
            names[sympy.Symbol(n, real=True)] = latex_name(Var(n, (), "hyper"))
        return names

    def latex(self):
        names = self._symbol_names()
        h_full = sympy.latex(to_sympy(self.hamiltonian_full), symbol_names=names)
        h_red = sympy.latex(to_sympy(self.hamiltonian), symbol_names=names)
        rows = [f"H &= {h_full}", f"H^{{*}} &= {h_red}"]
        rows += [eq.latex(names) for eq in self._lines()]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        return "$$" + self.latex() + "$$"

    def __str__(self):
        lines = [f"Hamiltonian system of network {self.net.name!r}",
                 f"  H  = {self.hamiltonian_full}",
                 f"  H* = {self.hamiltonian}"]
        lines += ["  " + str(eq) for eq in self._lines()]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<System {self.net.name}: {len(self.equations)} equations, "
                f"hyper={self.hyper}>")
