"""Elementary functions from plain arithmetic, and a dot product in vector instructions,
so that the generated kernels vectorise without fastmath, in float64 and in float32.

A call to libm's tanh inside a loop keeps LLVM from vectorising it: the loop runs one
element at a time, and tanh is about half of a small network's step. ``_tanh`` is
built instead from multiplications, additions, one division, a comparison and integer
bit operations, all of which LLVM turns into SIMD instructions. The arithmetic is IEEE
without fastmath, so a lane gives the same bits in a vector register as in the scalar
remainder of a loop, and the same bits in every compilation.

``_tanh(x)`` works in the type of x: ``_tanh64`` for float64, ``_tanh32`` for float32
(every constant a float32, so nothing is widened to float64). tanh(x) = sign(x) tanh(a),
a = |x|:

- a < 0.625: tanh(a) = a + a z R(z), z = a^2, R a polynomial for (tanh(a) - a) / a^3
  (degree 11 in float64, 4 in float32; hamsym.codegen.vector_math.fit_tanh_r made the
  coefficients). The term a z R(z) is at most 12% of the result, so R's rounding errors
  shrink accordingly; nan goes this way.
- a >= 0.625: tanh(a) = 1 - 2 / (e^(2a) + 1), with e^y = 2^k e^r, k = round(y / ln 2)
  taken with the 1.5 * 2^52 (float32: 2^23) shift (no float-to-int conversion),
  r = y - k ln 2 in two parts (|r| <= ln(2)/2; Taylor degree 13, float32 7), and 2^k
  built from its exponent bits. y is clamped to 40 (float32: 20), beyond which tanh
  rounds to 1 anyway (and inf stays finite).

Measured (tests/test_vector_math.py): float64 within 2 ulp of libm's tanh; float32
within 2 ulp of tanh rounded to float32.

``_dot(a, i, b, lanes)``: row i of a matrix times a vector, in `lanes` partial sums of
the arrays' own float type, in a fixed order (hamsym.codegen.lower.Lowering.dot writes
the same order out in Python). LLVM vectorises a sum only when allowed to reorder it
(fastmath), so the intrinsic emits the vector loads, multiplies and adds itself: as
fast as fastmath's loop, with bits that depend on the inputs only. float32 products and
sums stay float32: widening each product to float64 would cost more than the half of
the bytes float32 saves.

Only math, numpy, numba and llvmlite are imported: this file is also the text that
generated modules include (hamsym.codegen.vector_math.source).
"""

import math

import numba
import numba.extending
import numpy as np
from llvmlite import ir
from numba.core import cgutils


@numba.extending.intrinsic
def _as_double(typingctx, bits):
    """The float64 with the given int64 bit pattern."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return numba.types.float64(numba.types.int64), codegen


@numba.extending.intrinsic
def _as_bits(typingctx, x):
    """The int64 bit pattern of a float64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return numba.types.int64(numba.types.float64), codegen


@numba.extending.intrinsic
def _as_single(typingctx, bits):
    """The float32 with the low 32 bits of the given integer as its bit pattern."""
    if not isinstance(bits, numba.types.Integer):
        return None

    def codegen(context, builder, sig, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())
    return numba.types.float32(bits), codegen


@numba.extending.intrinsic
def _as_bits32(typingctx, x):
    """The int32 bit pattern of a float32."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return numba.types.int32(numba.types.float32), codegen


@numba.njit(inline="always", error_model="numpy")
def _tanh64(x):
    """tanh of a float64 from arithmetic only, so loops that call it vectorise."""
    a = abs(x)
    z = a * a
    q = 6.476658369354856e-06
    q = q * z + -3.118276779963142e-05
    q = q * z + 9.255408976445487e-05
    q = q * z + -0.0002375816628927853
    q = q * z + 0.0005896577189384784
    q = q * z + -0.0014557747943454275
    q = q * z + 0.003592121667721315
    q = q * z + -0.008863235096209671
    q = q * z + 0.021869488518662286
    q = q * z + -0.05396825396788825
    q = q * z + 0.13333333333333033
    q = q * z + -0.3333333333333333
    small = a + a * (z * q)
    y = 2.0 * a
    y = y if y <= 40.0 else 40.0         # tanh(20) rounds to 1; nan and inf go to 40 here
    kd = y * 1.4426950408889634 + 6755399441055744.0    # + 1.5 * 2^52: k in the low bits
    k = kd - 6755399441055744.0
    r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10   # ln 2 = hi + lo, k * hi exact
    e = 1.6059043836821613e-10
    e = e * r + 2.08767569878681e-09
    e = e * r + 2.505210838544172e-08
    e = e * r + 2.755731922398589e-07
    e = e * r + 2.7557319223985893e-06
    e = e * r + 2.48015873015873e-05
    e = e * r + 0.0001984126984126984
    e = e * r + 0.001388888888888889
    e = e * r + 0.008333333333333333
    e = e * r + 0.041666666666666664
    e = e * r + 0.16666666666666666
    e = e * r + 0.5
    e = e * r + 1.0
    e = e * r + 1.0
    e = e * _as_double((_as_bits(kd) - 0x4338000000000000 + 1023) << 52)
    big = 1.0 - 2.0 / (e + 1.0)
    return math.copysign(big if a >= 0.625 else small, x)


@numba.njit(inline="always", error_model="numpy")
def _tanh32(x):
    """tanh of a float32 in float32 arithmetic only (every constant a float32)."""
    a = abs(x)
    z = a * a
    q = np.float32(-0.006088718306273222)
    q = q * z + np.float32(0.020990874618291855)
    q = q * z + np.float32(-0.05384935066103935)
    q = q * z + np.float32(0.13332757353782654)
    q = q * z + np.float32(-0.333333283662796)
    small = a + a * (z * q)
    y = np.float32(2.0) * a
    y = y if y <= np.float32(20.0) else np.float32(20.0)    # tanh(10) rounds to 1 in float32
    kd = y * np.float32(1.4426950216293335) + np.float32(12582912.0)   # + 1.5 * 2^23
    k = kd - np.float32(12582912.0)
    r = (y - k * np.float32(0.693145751953125)) - k * np.float32(1.428606765330187e-06)
    e = np.float32(0.00019841270113829523)
    e = e * r + np.float32(0.0013888889225199819)
    e = e * r + np.float32(0.008333333767950535)
    e = e * r + np.float32(0.0416666679084301)
    e = e * r + np.float32(0.1666666716337204)
    e = e * r + np.float32(0.5)
    e = e * r + np.float32(1.0)
    e = e * r + np.float32(1.0)
    e = e * _as_single((_as_bits32(kd) - 0x4B400000 + 127) << 23)
    big = np.float32(1.0) - np.float32(2.0) / (e + np.float32(1.0))
    return math.copysign(big if a >= np.float32(0.625) else small, x)


def _tanh(x):
    """tanh in the float type of x: _tanh32 for float32, _tanh64 otherwise (compiled code only)."""
    raise NotImplementedError("_tanh is for compiled code")


@numba.extending.overload(_tanh, jit_options=dict(error_model="numpy"))
def _tanh_of_type(x):
    # the Python functions, inlined as they are (an inlined call of an inline="always"
    # function would be inlined twice, which Numba's IR checks warn about)
    if x == numba.types.float32:
        return _tanh32.py_func
    if isinstance(x, numba.types.Float):
        return _tanh64.py_func
    return None


@numba.extending.intrinsic
def _dot(typingctx, a, i, b, lanes):
    """Row i of the C-ordered matrix a times the vector b, in `lanes` lanes (a constant) of the
    arrays' float type: lane u sums the products of the columns r = u (mod lanes) below the
    last whole block, in order; the columns left go to lane 0; the lanes are then added
    pairwise. The same IEEE operations as hamsym.codegen.lower.Lowering.dot writes out in
    Python, but as LLVM vector instructions: without fastmath, LLVM does not vectorise a sum."""
    ok = (isinstance(a, numba.types.Array) and a.ndim == 2 and a.layout == "C" and
          isinstance(b, numba.types.Array) and b.ndim == 1 and b.layout == "C" and
          a.dtype == b.dtype and isinstance(a.dtype, numba.types.Float) and
          isinstance(i, numba.types.Integer) and isinstance(lanes, numba.types.IntegerLiteral))
    if not ok:
        return None
    width = lanes.literal_value

    def codegen(context, builder, sig, args):
        aty, ity, bty = sig.args[:3]
        mat = context.make_array(aty)(context, builder, args[0])
        vec = context.make_array(bty)(context, builder, args[2])
        cols = cgutils.unpack_tuple(builder, mat.shape, 2)[1]
        length = cgutils.unpack_tuple(builder, vec.shape, 1)[0]
        with builder.if_then(builder.icmp_signed("!=", length, cols), likely=False):
            context.call_conv.return_user_exc(builder, IndexError, ("_dot: vector and row differ in length",))
        pa = builder.gep(mat.data, [builder.mul(context.cast(builder, args[1], ity, numba.types.intp), cols)])
        pb = vec.data
        one = context.get_value_type(aty.dtype)
        wide = ir.VectorType(one, width)
        size = ir.Constant(cols.type, width)
        acc = cgutils.alloca_once_value(builder, ir.Constant(wide, [0.0] * width))
        blocks = builder.udiv(cols, size)
        with cgutils.for_range(builder, blocks) as loop:
            at = builder.mul(loop.index, size)
            x = builder.load(builder.bitcast(builder.gep(pa, [at]), wide.as_pointer()), align=1)
            y = builder.load(builder.bitcast(builder.gep(pb, [at]), wide.as_pointer()), align=1)
            builder.store(builder.fadd(builder.load(acc), builder.fmul(x, y)), acc)
        total = builder.load(acc)
        parts = [builder.extract_element(total, ir.Constant(ir.IntType(32), u)) for u in range(width)]
        first = cgutils.alloca_once_value(builder, parts[0])
        with cgutils.for_range_slice(builder, builder.mul(blocks, size), cols,
                                     ir.Constant(cols.type, 1)) as (r, _):
            product = builder.fmul(builder.load(builder.gep(pa, [r])), builder.load(builder.gep(pb, [r])))
            builder.store(builder.fadd(builder.load(first), product), first)
        parts[0] = builder.load(first)
        while len(parts) > 1:
            parts = [builder.fadd(x, y) for x, y in zip(parts[::2], parts[1::2])]
        return parts[0]
    return a.dtype(a, i, b, lanes), codegen
