"""A learner's step from Python with its arrays bound once.

Integrator.step() passes the compiled code only the sample and one small int64 table,
rebuilt when the learner's arrays or hyperparameters change: the data addresses of the
arrays of step() (in the module's BOUND order), then the bits of the scalars. Unboxing
two dozen arrays per call would cost more than a small network's step. The module's
_bound_step kernel rebuilds its arrays from the addresses with `view`.
"""

import numba
import numba.extending
import numpy as np

from .jit import HOT, portable_cache


@numba.extending.intrinsic
def view(typingctx, address, like, shape):
    """The C-ordered array of like's dtype and the given shape at an integer address. It
    owns nothing (the learner holds the array), so it needs no reference counting."""
    if not (isinstance(address, numba.types.Integer) and isinstance(like, numba.types.Array)
            and isinstance(shape, numba.types.BaseTuple)):
        return None
    out_type = numba.types.Array(like.dtype, len(shape), "C")

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        from numba.np.arrayobj import make_array, populate_array
        intp = numba.types.intp
        extents = [context.cast(builder, n, t, intp)
                   for n, t in zip(cgutils.unpack_tuple(builder, args[2], len(shape)), shape)]
        item = context.get_abi_sizeof(context.get_data_type(like.dtype))
        strides = [context.get_constant(intp, item)]
        for n in extents[:0:-1]:
            strides.insert(0, builder.mul(strides[0], n))
        data = builder.inttoptr(args[0], context.get_data_type(like.dtype).as_pointer())
        out = make_array(out_type)(context, builder)
        populate_array(out, data=data, shape=extents, strides=strides,
                       itemsize=context.get_constant(intp, item), meminfo=None)
        return out._getvalue()
    return out_type(address, like, shape), codegen


def stepper(bound_step, sample_shapes, dtype, cache):
    """bound_step compiled for C-ordered, writable samples of dtype and nothing else:
    Numba then refuses (TypeError) any other sample instead of compiling a version for
    it, so step() can leave the checks of its common case to Numba's dispatch. cache:
    a dict, dtype -> compiled function, kept by the module."""
    dtype = np.dtype(dtype)
    if dtype not in cache:
        table = numba.types.Array(numba.types.int64, 1, "C")
        sample = [numba.types.Array(numba.from_dtype(dtype), len(shape), "C")
                  for shape in sample_shapes]
        compiled = portable_cache(numba.njit(**HOT)(bound_step))
        compiled.compile(numba.types.float64(table, *sample))
        compiled.disable_compile()          # as numba.njit(signature) leaves it
        cache[dtype] = compiled
    return cache[dtype]
