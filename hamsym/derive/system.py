"""The derived Hamiltonian system: what `derive` returns.

It holds the Hamiltonian (full and reduced), the control law, one equation per
state, weight and costate, and the backward messages dH/dh of the instantaneous
neurons. Everything is available three ways: hamsym expressions (what the code
generator reads), SymPy objects (``.sympy()``, to manipulate), and text/LaTeX
(``print(system)``, ``system.latex()``, rendered in Jupyter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ..declare.expr import Var
from ..declare.rewrite import expand
from ..declare.sympy_form import latex, latex_name, symbol_names, to_sympy  # noqa: F401 (latex_name: public)


TIME = sympy.Symbol("t", real=True)

#: what the symbols that are not the user's own mean (shown under every system)
LEGEND_TEXT = ("where H* = min over the controls v of H: the reduced Hamiltonian (v = -beta*p_w)",
               "      flip = s = +1 or -1: the sign of the costate equations (-1 in HL)",
               "      theta, theta_neurons: per-step decays of the weight and neuron costates "
               "(rates theta/delta, theta_neurons/delta)")
LEGEND_LATEX = (r"&\text{where } H^{*} = \min_{v} H \text{ is the reduced Hamiltonian } "
                r"(v = -\beta p_{w}),\; s = \pm 1 \text{ the sign flip of the costate equations } "
                r"(s = -1 \text{ in HL}),\; \theta, \theta_{\xi} \text{ the per-step decays of the "
                r"weight and neuron costates (rate } \theta / \delta \text{)}")


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
        return f"{lhs} &= {latex(self.rhs, names)}"

    def _repr_latex_(self):
        return "$" + self.latex().replace("&=", "=") + "$"

    def __str__(self):
        prime = "" if self.kind in ("control", "message") else "'"
        return f"{self.lhs.name}{prime} = {self.rhs}"


@dataclass(frozen=True)
class System:
    """What `derive` returns.

    hamiltonian: the reduced Hamiltonian H* = min over the controls v of H
        = gamma*loss + sum_x <p_x, f_x> - beta/2 sum_w |p_w|^2 (also `hamiltonian_reduced`);
    hamiltonian_full: H with the controls v_w, minimized by the control law v_w = -beta p_w;
    control_law, equations (states, weights, costates), gradients dH/d(variable),
    messages (dH/dh of the instantaneous neurons), costates (variable -> p_variable).
    """

    net: object
    hyper: dict
    hamiltonian: object
    hamiltonian_full: object
    control_law: list
    equations: list
    gradients: dict
    messages: list
    costates: dict
    # weights with their own gamma, beta, theta: name -> {kind: default, None = the global}
    # (set by the code generator's per_weight option: hamsym.codegen.per_weight)
    per_weight: dict = field(default_factory=dict)

    @property
    def hamiltonian_reduced(self):
        """H* = min over the controls of H: the same expression as `hamiltonian`."""
        return self.hamiltonian

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
        return symbol_names(list(self.net.vars.values()) + list(self.costates.values()) +
                            [m for m, _ in self.messages] + [eq.lhs for eq in self.control_law] +
                            [Var(n, (), "hyper") for n in ("theta_neurons", "flip")])

    def latex(self):
        """An aligned block: H, H*, then every line of `print(system)`, then what s and theta are."""
        names = self._symbol_names()
        rows = [f"H &= {latex(self.hamiltonian_full, names)}",
                f"H^{{*}} &= {latex(self.hamiltonian, names)}"]
        rows += [eq.latex(names) for eq in self._lines()]
        rows.append(LEGEND_LATEX)
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        return "$$" + self.latex() + "$$"

    def __str__(self):
        lines = [f"Hamiltonian system of network {self.net.name!r}",
                 f"  H  = {self.hamiltonian_full}",
                 f"  H* = {self.hamiltonian}"]
        lines += ["  " + str(eq) for eq in self._lines()]
        lines += ["  " + line for line in LEGEND_TEXT]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<System {self.net.name}: {len(self.equations)} equations, "
                f"hyper={self.hyper}>")
