"""Samples of a stream, checked one by one and copied into fixed chunk buffers, so a
stream of any length runs in compiled chunks in constant memory."""

from . import checks


def sample(values, index, names):
    """One sample of a stream as arrays of the declared shapes (names: [(name, shape)]),
    or an error that names the field and the sample's index."""
    fields = ", ".join(name for name, _ in names)
    if len(names) == 1 and not isinstance(values, tuple):
        values = (values,)
    if not isinstance(values, (tuple, list)):
        raise TypeError(f"sample {index}: expected a tuple ({fields}), "
                        f"got {type(values).__name__}")
    if len(values) != len(names):
        detail = ", ".join(name for name, _ in names[len(values):]) + " missing" \
            if len(values) < len(names) else f"{len(values) - len(names)} extra"
        raise ValueError(f"sample {index}: expected {len(names)} items ({fields}), "
                         f"got {len(values)}: {detail}")
    out = []
    for (name, shape), value in zip(names, values):
        a = checks.real(value, f"sample {index}: {name}")
        if a.shape != shape:
            if a.size == shape[0] and len(shape) == 1 and a.ndim <= 2 and (
                    a.ndim == 2 and 1 in a.shape or a.ndim == 0 and shape == (1,)):
                a = a.reshape(shape)
            else:
                raise ValueError(f"sample {index}: {name} has shape {a.shape}, "
                                 f"declared {shape}")
        out.append(a)
    return out


def chunks(samples, names, buffers, chunk, ctrl_c, interrupted, counted, finite=False):
    """Copy the samples, checked, into the next rows of the chunk buffers (one per name,
    rows along the first axis) and yield n, the rows filled, whenever they are full and
    at the end: the caller runs those rows before the next sample is read, so memory does
    not grow with the stream. Ctrl-C between two samples raises interrupted(samples read
    but not applied); a bad sample (with finite, also one holding a value that is not
    finite) is raised after the rows before it were yielded, its message ending with
    counted()."""
    filled = first = 0
    for index, values in enumerate(samples):
        if ctrl_c.pressed:
            raise interrupted(filled + 1)
        try:
            arrays = sample(values, index, names)
        except (TypeError, ValueError) as exc:
            yield from _finite_part(buffers, filled, first, names, finite, counted)
            if filled:
                yield filled
            raise type(exc)(f"{exc}; the {index} samples before it were applied "
                            f"({counted()})") from None
        for buffer, value in zip(buffers, arrays):
            buffer[filled] = value
        filled += 1
        if filled == chunk:
            yield from _finite_part(buffers, filled, first, names, finite, counted)
            yield chunk
            filled, first = 0, index + 1
    if filled:
        yield from _finite_part(buffers, filled, first, names, finite, counted)
        yield filled


def _finite_part(buffers, filled, first, names, finite, counted):
    """Nothing when the chunk's rows are finite (or finite is off). Otherwise the rows
    before the first that is not (if any), then ValueError naming that sample (first:
    the stream index of the chunk's row 0)."""
    bad = checks.not_finite([b[:filled] for b in buffers], [name for name, _ in names]) \
        if finite else None
    if bad is None:
        return
    name, (row, *index), value = bad
    if row:
        yield row
    raise ValueError(f"sample {first + row}: {checks.entry(name, index)} is {value}: the data "
                     f"must be finite numbers; the {first + row} samples before it were "
                     f"applied ({counted()}); check_finite=False lets such data in")
