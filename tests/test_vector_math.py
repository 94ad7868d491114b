"""The runtime's vectorisable functions (hamsym/runtime/vector_math.py) on their own: tanh in
float64 and float32 against libm's, their polynomial against the fit that made it, the
bit-pattern helpers against numpy's views, and the dot product against a plain Python sum
in the order it promises."""

import math
import runpy

import numba
import numpy as np
import pytest

from hamsym.codegen import vector_math as fitting
from hamsym.codegen.lower import lanes
from hamsym.runtime import vector_math as vm

MAX_ULP = {np.float64: 2, np.float32: 2}


@numba.njit(error_model="numpy")
def _apply_tanh(x, out):
    for i in range(x.shape[0]):
        out[i] = vm._tanh(x[i])


def tanh(x):
    out = np.empty_like(x)
    _apply_tanh(x, out)
    return out


def ulps(a, b):
    """Distance in units in the last place (adjacent floats are 1 apart; 0.0 and -0.0 are 0)."""
    signed = np.int64 if a.dtype == np.float64 else np.int32

    def ordered(v):
        bits = v.view(signed).astype(np.int64)
        return np.where(bits < 0, np.iinfo(signed).min - bits, bits)
    return np.abs(ordered(a) - ordered(b))


def points():
    rng = np.random.default_rng(11)
    tiny = np.nextafter(0.0, 1.0)
    switch = fitting.SWITCH
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


def points32():
    """Every 29th float32 from 2^-30 to 12, the edges, and their negatives (19 million)."""
    lo, hi = np.float32(2.0 ** -30).view(np.int32), np.float32(12.0).view(np.int32)
    x = np.arange(lo, hi, 29, dtype=np.int32).view(np.float32)
    f32 = np.finfo(np.float32)
    edges = np.array([0.0, f32.smallest_subnormal, f32.tiny, 1e-20, np.nextafter(np.float32(0.625), 0),
                      0.625, np.nextafter(np.float32(0.625), 1), 9.0, 9.1, 10.0, 20.0, 1e10, f32.max,
                      np.inf], np.float32)
    x = np.concatenate([x, edges])
    return np.concatenate([x, -x])


def test_tanh64_within_2_ulp_of_libm():
    x = points()
    got, want = tanh(x), np.tanh(x)
    assert np.isnan(tanh(np.array([np.nan, -np.nan]))).all()
    err = ulps(got, want)
    worst = int(np.argmax(err))
    assert err.max() <= MAX_ULP[np.float64], \
        f"{err.max()} ulp at x = {x[worst]!r}: {got[worst]!r} vs {want[worst]!r}"
    assert (err == 0).mean() > 0.6             # mostly the same bits as libm
    # signs of zero and the odd symmetry hold exactly
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(tanh(-x), -got)
    # the edges bit for bit
    for v in (0.0, -0.0, 5e-324, -5e-324, 1e-300, 25.0, -25.0, np.inf, -np.inf):
        out = tanh(np.array([v]))[0]
        assert out == math.tanh(v) and math.copysign(1, out) == math.copysign(1, math.tanh(v)), v


def test_tanh32_within_2_ulp_of_tanh_rounded_to_float32():
    x = points32()
    got = tanh(x)
    assert got.dtype == np.float32
    want = np.tanh(x.astype(np.float64)).astype(np.float32)      # libm, rounded once
    err = ulps(got, want)
    worst = int(np.argmax(err))
    assert err.max() <= MAX_ULP[np.float32], \
        f"{err.max()} ulp at x = {x[worst]!r}: {got[worst]!r} vs {want[worst]!r}"
    assert (err == 0).mean() > 0.9
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert np.array_equal(tanh(-x), -got)
    assert np.isnan(tanh(np.array([np.nan, -np.nan], np.float32))).all()
    for v in (0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45):
        out = tanh(np.array([v], np.float32))[0]
        assert out == np.float32(math.tanh(v)) and np.signbit(out) == np.signbit(np.float32(v)), v


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_polynomial_is_the_fit(dtype):
    """Below the switch, _tanh is a + a z R(z) with R's coefficients those fit_tanh_r gives
    (rounded to the dtype), evaluated in the dtype by Horner's rule: the same bits."""
    degree = fitting.DEGREES[np.dtype(dtype).name]
    coefficients = [dtype(c) for c in fitting.fit_tanh_r(degree)]
    a = np.linspace(0.0, fitting.SWITCH, 100_001, dtype=dtype)[:-1]
    z = a * a
    q = np.full_like(a, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        q = q * z + c
    assert np.array_equal(tanh(a), a + a * (z * q))


def test_bit_patterns_match_numpy_views():
    @numba.njit
    def patterns(x64, x32):
        return vm._as_bits(x64), vm._as_double(vm._as_bits(x64)), vm._as_bits32(x32), \
            vm._as_single(vm._as_bits32(x32)), vm._as_single(np.int64(vm._as_bits32(x32)))

    for v in (0.0, -0.0, 1.0, -2.5, 1e-310, np.inf, 3.4e38):
        b64, back64, b32, back32, wide32 = patterns(v, np.float32(v))
        assert b64 == np.float64(v).view(np.int64) and back64 == v
        assert b32 == np.float32(v).view(np.int32) and back32 == np.float32(v) == wide32
        assert np.signbit(back32) == np.signbit(np.float32(v))


def lanes_reference(row, v, width):
    """The order _dot promises, as a plain Python loop over numpy scalars of the arrays' dtype
    (each product and sum rounded to that dtype)."""
    zero = row.dtype.type(0.0)
    k = row.shape[0]
    whole = k - k % width
    acc = [zero] * width
    for r in range(whole):
        acc[r % width] = acc[r % width] + row[r] * v[r]
    for r in range(whole, k):
        acc[0] = acc[0] + row[r] * v[r]
    while len(acc) > 1:
        acc = [acc[u] + acc[u + 1] for u in range(0, len(acc), 2)]
    return acc[0]


@numba.njit(error_model="numpy")
def _rows(a, b, out):
    for i in range(a.shape[0]):
        out[i] = vm._dot(a, i, b, 4) if a.shape[1] < 64 else (
            vm._dot(a, i, b, 8) if a.shape[1] < 256 else vm._dot(a, i, b, 16))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dot_adds_in_its_documented_order(dtype):
    rng = np.random.default_rng(2)
    for k in (8, 13, 32, 64, 70, 256, 16 * 7 + 3, 1024):
        a = rng.normal(size=(4, k)).astype(dtype)
        b = rng.normal(size=k).astype(dtype)
        out = np.empty(4, dtype)
        _rows(a, b, out)
        want = np.array([lanes_reference(a[i], b, lanes(k)) for i in range(4)], dtype)
        assert np.array_equal(out, want), (k, dtype)
        # and it is a dot product: within a few roundings per term of the float64 one
        exact = a.astype(np.float64) @ b.astype(np.float64)
        bound = 2 * k * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b))
        assert np.all(np.abs(out - exact) <= bound), (k, dtype)
    with pytest.raises(IndexError, match="differ in length"):
        _rows(np.ones((2, 300), dtype), np.ones(299, dtype), np.empty(2, dtype))


def test_generated_modules_call_the_runtimes_functions():
    import hamsym as hs
    from hamsym.declare.zoo import mlp
    source = hs.render(hs.derive(mlp([2, 3, 1], name="vm")))
    assert "_tanh, _dot = _runtime.tanh, _runtime.dot" in source and "def _tanh" not in source
    assert fitting.RUNTIME.read_text() == open(vm.__file__).read()
    space = runpy.run_path(vm.__file__)          # standalone: the file defines it all
    assert {"_tanh", "_tanh64", "_tanh32", "_dot", "_as_double", "_as_bits",
            "_as_single", "_as_bits32"} <= set(space)
