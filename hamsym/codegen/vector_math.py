"""Elementary functions from plain arithmetic, and a dot product in vector instructions,
so that the kernels vectorise without fastmath.

A call to libm's tanh inside a loop keeps LLVM from vectorising it: the loop runs
one element at a time, and tanh is about half of a small network's step. The
generated module instead defines ``_tanh`` (inlined into the kernels) from
multiplications, additions, one division, a comparison and integer bit
operations, all of which LLVM turns into SIMD instructions. The arithmetic is
IEEE without fastmath, so the result is the same bit for bit whether a lane runs
in a vector register or in the scalar remainder of the loop.

tanh(x) = sign(x) * tanh(a), a = |x|:

- a < 0.625: tanh(a) = a + a z R(z), z = a^2, with R a polynomial of degree 11
  (TANH_R, fitted as below) for (tanh(a) - a) / a^3. The term a z R(z) is at most
  12% of the result, so R's rounding errors shrink accordingly; nan goes this way.
- a >= 0.625: tanh(a) = 1 - 2 / (e^(2a) + 1), with e^y = 2^k e^r, k = round(y / ln 2)
  taken with the 1.5 * 2^52 shift (no float-to-int conversion), r = y - k ln 2 in
  two parts (|r| <= ln(2)/2, Taylor degree 13), and 2^k built from its exponent bits.
  y is clamped to 40, beyond which tanh rounds to 1 anyway (and inf stays finite).

Measured against numpy's tanh (tests/test_vector_math.py): at most 2 ulp apart,
2 ulp only rarely just above the switch point 0.625.

``_dot(a, i, b, lanes)``: row i of a matrix times a vector, with `lanes` partial sums in a
fixed order (``Lowering.dot`` writes the same order out in Python). LLVM vectorises
a sum only when allowed to reorder it (fastmath), so the intrinsic emits the vector
loads, multiplies and adds itself: as fast as fastmath's loop, with bits that depend
on the inputs only. It checks that the vector is as long as the row (IndexError).

TANH_R fit (reproduce with ``fit_tanh_r()``, mpmath at 50 digits): least squares of
the relative error at 84 Chebyshev nodes of z in [0, 0.625^2]; the fit's relative
error on R is 1.2e-17.
"""

from __future__ import annotations

import math

SWITCH = 0.625
TANH_R = (-0.3333333333333333, 0.13333333333333033, -0.05396825396788825,
          0.021869488518662286, -0.008863235096209671, 0.003592121667721315,
          -0.0014557747943454275, 0.0005896577189384784, -0.0002375816628927853,
          9.255408976445487e-05, -3.118276779963142e-05, 6.476658369354856e-06)
LN2_HI = 0.6931471803691238        # ln 2 with 21 trailing zero bits: k * LN2_HI is exact
LN2_LO = 1.9082149292705877e-10    # ln 2 - LN2_HI
EXP_DEGREE = 13
SHIFT = 6755399441055744.0         # 1.5 * 2^52: y/ln2 + SHIFT rounds to an integer k in the low bits
SHIFT_BITS = 0x4338000000000000


def fit_tanh_r(degree=11, switch=SWITCH, digits=50):
    """Coefficients of R(z) ~ (tanh(a) - a) / a^3, z = a^2 in [0, switch^2] (how TANH_R was made)."""
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


def _horner(var, acc, coefficients, indent="    "):
    """Lines computing acc = polynomial in var (coefficients from degree 0 up)."""
    lines = [f"{indent}{acc} = {coefficients[-1]!r}"]
    lines += [f"{indent}{acc} = {acc} * {var} + {c!r}" for c in reversed(coefficients[:-1])]
    return lines


_DOT = '''
@numba.extending.intrinsic
def _dot(typingctx, a, i, b, lanes):
    """Row i of the C-ordered matrix a times the vector b, in `lanes` lanes (a constant):
    lane u sums the products of the columns r = u (mod lanes) below the last whole block, in order;
    the columns left go to lane 0; the lanes are then added pairwise. The same
    IEEE operations as hamsym.codegen.lower.Lowering.dot writes out in Python, but
    as LLVM vector instructions: without fastmath, LLVM does not vectorise a sum."""
    ok = (isinstance(a, numba.types.Array) and a.ndim == 2 and a.layout == "C" and
          isinstance(b, numba.types.Array) and b.ndim == 1 and b.layout == "C" and
          a.dtype == b.dtype and isinstance(i, numba.types.Integer) and
          isinstance(lanes, numba.types.IntegerLiteral))
    if not ok:
        return None
    width = lanes.literal_value

    def codegen(context, builder, sig, args):
        from llvmlite import ir        # Numba's own code generator
        from numba.core import cgutils
        aty, ity, bty = sig.args[:3]
        mat = context.make_array(aty)(context, builder, args[0])
        vec = context.make_array(bty)(context, builder, args[2])
        cols = cgutils.unpack_tuple(builder, mat.shape, 2)[1]
        length = cgutils.unpack_tuple(builder, vec.shape, 1)[0]
        with builder.if_then(builder.icmp_signed("!=", length, cols), likely=False):
            context.call_conv.return_user_exc(builder, IndexError, ("_dot: vector and row differ in length",))
        pa = mat.data
        pa = builder.gep(pa, [builder.mul(context.cast(builder, args[1], ity, numba.types.intp), cols)])
        pb = vec.data
        one = context.get_value_type(aty.dtype)
        f64 = ir.DoubleType()
        wide, acc_type = ir.VectorType(one, width), ir.VectorType(f64, width)
        size = ir.Constant(cols.type, width)
        acc = cgutils.alloca_once_value(builder, ir.Constant(acc_type, [0.0] * width))
        blocks = builder.udiv(cols, size)
        with cgutils.for_range(builder, blocks) as loop:
            at = builder.mul(loop.index, size)
            x = builder.load(builder.bitcast(builder.gep(pa, [at]), wide.as_pointer()), align=1)
            y = builder.load(builder.bitcast(builder.gep(pb, [at]), wide.as_pointer()), align=1)
            product = builder.fmul(x, y)
            if one != f64:                 # float32: the product rounds to float32 first
                product = builder.fpext(product, acc_type)
            builder.store(builder.fadd(builder.load(acc), product), acc)
        total = builder.load(acc)
        parts = [builder.extract_element(total, ir.Constant(ir.IntType(32), u)) for u in range(width)]
        first = cgutils.alloca_once_value(builder, parts[0])
        with cgutils.for_range_slice(builder, builder.mul(blocks, size), cols,
                                     ir.Constant(cols.type, 1)) as (r, _):
            product = builder.fmul(builder.load(builder.gep(pa, [r])), builder.load(builder.gep(pb, [r])))
            if one != f64:
                product = builder.fpext(product, f64)
            builder.store(builder.fadd(builder.load(first), product), first)
        parts[0] = builder.load(first)
        while len(parts) > 1:
            parts = [builder.fadd(x, y) for x, y in zip(parts[::2], parts[1::2])]
        return parts[0]
    return numba.types.float64(a, i, b, lanes), codegen
'''


def source():
    """Python source of the helpers, for the generated module (numba only)."""
    exp_taylor = tuple(1.0 / math.factorial(n) for n in range(EXP_DEGREE + 1))
    lines = [
        "@numba.extending.intrinsic",
        "def _as_double(typingctx, bits):",
        '    """The float64 with the given int64 bit pattern."""',
        "    def codegen(context, builder, sig, args):",
        "        return builder.bitcast(args[0], context.get_value_type(numba.types.float64))",
        "    return numba.types.float64(numba.types.int64), codegen",
        "",
        "",
        "@numba.extending.intrinsic",
        "def _as_bits(typingctx, x):",
        '    """The int64 bit pattern of a float64."""',
        "    def codegen(context, builder, sig, args):",
        "        return builder.bitcast(args[0], context.get_value_type(numba.types.int64))",
        "    return numba.types.int64(numba.types.float64), codegen",
        "",
        "",
        "@numba.njit(inline=\"always\", **_JIT)",
        "def _tanh(x):",
        '    """tanh from arithmetic only, so loops that call it vectorise (hamsym.codegen.vector_math)."""',
        "    a = abs(x)",
        "    z = a * a",
        *_horner("z", "q", TANH_R),
        "    small = a + a * (z * q)",
        "    y = 2.0 * a",
        "    y = y if y <= 40.0 else 40.0         # tanh(20) rounds to 1; nan and inf go to 40 here",
        f"    kd = y * {1 / math.log(2)!r} + {SHIFT!r}",
        f"    k = kd - {SHIFT!r}",
        f"    r = (y - k * {LN2_HI!r}) - k * {LN2_LO!r}",
        *_horner("r", "e", exp_taylor),
        f"    e = e * _as_double((_as_bits(kd) - {SHIFT_BITS:#x} + 1023) << 52)",
        "    big = 1.0 - 2.0 / (e + 1.0)",
        f"    return math.copysign(big if a >= {SWITCH!r} else small, x)",
    ]
    return "\n".join(lines) + "\n\n" + _DOT
