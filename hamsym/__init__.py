"""hamsym: Hamiltonian Learning from a symbolic network to a Numba integrator.

Declare a network (`Network`), derive Hamilton's equations (`derive`), generate a
standalone integrator module (`generate`, `load`).
"""

from .declare.activations import Activation, activation, cos, identity, relu, sigmoid, sin, softplus, tanh
from .declare.expr import DeclarationError, ShapeError
from .declare.reductions import dot, mse, softmax, softmax_cross_entropy, sum_squares, total
from .derive.hamiltonian import derive
from .declare.network import Network
from .declare.sympy_form import latex, to_sympy
from .derive.system import Equation, System

__version__ = "0.1.0"

__all__ = [
    "Activation", "DeclarationError", "Equation", "Network", "ShapeError", "System",
    "activation", "cos", "derive", "dot", "identity", "latex", "mse", "relu", "sigmoid", "sin",
    "softmax",
    "softmax_cross_entropy", "softplus", "sum_squares", "tanh", "to_sympy", "total",
]

from .codegen.render import generate, load, render  # noqa: E402
from .codegen.schedule import FrozenWeightsWarning  # noqa: E402

__all__ += ["FrozenWeightsWarning", "generate", "load", "render"]

from .workbench.spec import SpecError, load_spec  # noqa: E402

__all__ += ["SpecError", "load_spec"]

from .workbench.sweeps import sweep  # noqa: E402
from .workbench.find_beta import find_beta, sgd_equivalent  # noqa: E402
from .declare import zoo  # noqa: E402
from .workbench import plot, river, streams  # noqa: E402  (each imports its extra when used)

__all__ += ["sweep", "find_beta", "sgd_equivalent", "zoo", "plot", "river", "streams"]

# the user-facing modules also under their short paths, as before the package had stages:
# `from hamsym.zoo import mlp`, `import hamsym.streams`
import sys as _sys  # noqa: E402

for _name, _module in (("zoo", zoo), ("streams", streams), ("plot", plot), ("river", river)):
    _sys.modules.setdefault(f"{__name__}.{_name}", _module)
