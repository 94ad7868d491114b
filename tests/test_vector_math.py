"""The generated module's own tanh (arithmetic only, so loops vectorise) against libm's, and its
vectorised dot product against the order it promises."""

import math

import numba
import numpy as np
import pytest

from hamsym.codegen import vector_math

MAX_ULP = 2


@pytest.fixture(scope="module")
def tanh_loop():
    """_tanh exactly as a generated module defines it, applied over an array by a compiled loop."""
    space = {"numba": numba, "math": math, "_JIT": dict(nogil=True, error_model="numpy")}
    exec(vector_math.source(), space)          # the text the template includes
    tanh = space["_tanh"]

    @numba.njit(error_model="numpy")
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = tanh(x[i])

    def f(x):
        out = np.empty_like(x)
        apply(x, out)
        return out
    return f


def ulps(a, b):
    """Distance in units in the last place (adjacent floats are 1 apart; 0.0 and -0.0 are 0)."""
    def ordered(v):
        bits = v.view(np.int64)
        return np.where(bits < 0, np.int64(-2 ** 63) - bits, bits)
    return np.abs(ordered(a) - ordered(b))


def points():
    rng = np.random.default_rng(11)
    tiny = np.nextafter(0.0, 1.0)
    switch = vector_math.SWITCH
    edges = [0.0, tiny, 1e-320, 2.2250738585072014e-308, 1e-300, 1e-160, 1e-8, 0.1, 0.5,
             np.nextafter(switch, 0.0), switch, np.nextafter(switch, 1.0), 1.0, 10.0,
             19.0, 19.06, 19.1, 20.0, np.nextafter(20.0, 21.0), 40.0, 710.0, 1e300,
             np.finfo(float).max, np.inf]
    edges = np.array(edges)
    near_switch = switch + rng.uniform(-0.05, 0.05, 200_000)
    magnitudes = np.exp(rng.uniform(math.log(tiny), math.log(1e3), 1_000_000))
    x = np.concatenate([np.linspace(-25.0, 25.0, 2_000_001), rng.normal(scale=3.0, size=1_000_000),
                        rng.uniform(-1.0, 1.0, 1_000_000), magnitudes, near_switch, edges])
    return np.concatenate([x, -x])


def test_tanh_within_2_ulp_of_libm(tanh_loop):
    x = points()
    got, want = tanh_loop(x), np.tanh(x)
    assert np.isnan(tanh_loop(np.array([np.nan, -np.nan]))).all()
    err = ulps(got, want)
    worst = int(np.argmax(err))
    assert err.max() <= MAX_ULP, f"{err.max()} ulp at x = {x[worst]!r}: {got[worst]!r} vs {want[worst]!r}"
    assert (err == 0).mean() > 0.6             # mostly the same bits as libm
    # signs of zero and the odd symmetry hold exactly
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(tanh_loop(-x), -got)
    # the edges bit for bit
    for v in (0.0, -0.0, 5e-324, -5e-324, 1e-300, 25.0, -25.0, np.inf, -np.inf):
        out = tanh_loop(np.array([v]))[0]
        assert out == math.tanh(v) and math.copysign(1, out) == math.copysign(1, math.tanh(v)), v



def lanes_reference(row, v, lanes):
    """The order _dot promises, in plain numpy float64 (elementwise IEEE operations)."""
    k = row.shape[0]
    whole = k - k % lanes
    acc = np.zeros(lanes)
    for r in range(0, whole, lanes):
        acc = acc + (row[r:r + lanes] * v[r:r + lanes]).astype(np.float64)
    acc = list(acc)
    for r in range(whole, k):
        acc[0] = acc[0] + np.float64(row[r] * v[r])
    while len(acc) > 1:
        acc = [acc[u] + acc[u + 1] for u in range(0, len(acc), 2)]
    return acc[0]


def test_dot_adds_in_its_documented_order():
    from hamsym.codegen.lower import lanes
    space = {"numba": numba, "math": math, "_JIT": dict(nogil=True, error_model="numpy")}
    exec(vector_math.source(), space)
    dot = space["_dot"]

    @numba.njit(error_model="numpy")
    def rows(a, b, out):
        for i in range(a.shape[0]):
            out[i] = dot(a, i, b, 4) if a.shape[1] < 64 else (
                dot(a, i, b, 8) if a.shape[1] < 256 else dot(a, i, b, 16))

    rng = np.random.default_rng(2)
    for k in (8, 13, 32, 64, 70, 256, 16 * 7 + 3):
        for dtype in (np.float64, np.float32):
            a = rng.normal(size=(4, k)).astype(dtype)
            b = rng.normal(size=k).astype(dtype)
            out = np.empty(4)
            rows(a, b, out)
            want = [lanes_reference(a[i], b, lanes(k)) for i in range(4)]
            assert np.array_equal(out, want), (k, dtype)
            assert np.allclose(out, a.astype(float) @ b.astype(float), rtol=1e-5)
    with pytest.raises(IndexError, match="differ in length"):
        rows(np.ones((2, 300)), np.ones(299), np.empty(2))
