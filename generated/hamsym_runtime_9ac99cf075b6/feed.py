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


def chunks(samples, names, buffers, chunk, ctrl_c, interrupted, counted):
    """Copy the samples, checked, into the next rows of the chunk buffers (one per name,
    rows along the first axis) and yield n, the rows filled, whenever they are full and
    at the end: the caller runs those rows before the next sample is read, so memory does
    not grow with the stream. Ctrl-C between two samples raises interrupted(samples read
    but not applied); a bad sample is raised after the rows before it were yielded, its
    message ending with counted()."""
    filled = 0
    for index, values in enumerate(samples):
        if ctrl_c.pressed:
            raise interrupted(filled + 1)
        try:
            arrays = sample(values, index, names)
        except (TypeError, ValueError) as exc:
            if filled:
                yield filled
            raise type(exc)(f"{exc}; the {index} samples before it were applied "
                            f"({counted()})") from None
        for buffer, value in zip(buffers, arrays):
            buffer[filled] = value
        filled += 1
        if filled == chunk:
            yield chunk
            filled = 0
    if filled:
        yield filled
