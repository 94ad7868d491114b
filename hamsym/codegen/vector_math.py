"""The vectorisable elementary functions of generated modules: where their constants come
from, and the text a module includes.

The functions themselves live in hamsym.runtime.vector_math, an ordinary module of the
runtime that generated modules import (its docstring says how tanh and the dot product
are computed and how accurate they are).

The polynomial R(z) ~ (tanh(a) - a) / a^3 of the small-argument branch of tanh was
fitted by ``fit_tanh_r`` (mpmath at 50 digits): least squares of the relative error at
4 * degree + 40 Chebyshev nodes of z in [0, 0.625^2]. Degree 11 gives the float64
coefficients (the fit's relative error on R is 1.2e-17), degree 4 the float32 ones,
rounded to float32 (1e-7 on R, which makes at most 12% of the result).
"""

from __future__ import annotations

from pathlib import Path

SWITCH = 0.625          # tanh's branch point: the polynomial below, the exponential above
DEGREES = {"float64": 11, "float32": 4}
RUNTIME = Path(__file__).resolve().parents[1] / "runtime" / "vector_math.py"


def fit_tanh_r(degree=11, switch=SWITCH, digits=50):
    """Coefficients of R(z) ~ (tanh(a) - a) / a^3, z = a^2 in [0, switch^2], from degree 0 up."""
    import mpmath as mp
    mp.mp.dps = digits
    top = mp.mpf(switch) ** 2
    nodes = 4 * degree + 40

    def r(z):
        a = mp.sqrt(z)
        return (mp.tanh(a) - a) / a ** 3

    zs = [top / 2 * (1 - mp.cos(mp.pi * (k + mp.mpf(1) / 2) / nodes)) for k in range(nodes)]
    rows = mp.matrix([[z ** j / abs(r(z)) for j in range(degree + 1)] for z in zs])
    rhs = mp.matrix([r(z) / abs(r(z)) for z in zs])
    return tuple(float(c) for c in mp.qr_solve(rows, rhs)[0])
