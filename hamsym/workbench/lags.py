"""Lagged windows of a time series: a supervised stream from a series of values.

Row k of ``lagged(x, lags, horizon)`` has as input the window x[k], ..., x[k + lags - 1]
(oldest first) and as target x[k + lags - 1 + horizon], the value `horizon` steps
after the newest input. A series of T values gives T - lags - horizon + 1 rows.
"""

from __future__ import annotations

import numpy as np


def lagged(series, lags=8, horizon=1, *, inputs=None, targets=None):
    """The supervised stream of a time series: (U, Y) with U[k] the last `lags` values
    of the input columns and Y[k] the target columns `horizon` steps later.

    series: an array (T,) or (T, n), or an iterable of blocks of one series in order
    (arrays (m,) of a univariate series or (m, n); a number is one step), endless if
    you like. inputs, targets: 0-based columns of the series (default: all of them).
    U[k] is the window x[k : k + lags, inputs] flattened row by row (oldest step first,
    the columns of each step together): lags * len(inputs) values. Y[k] is
    x[k + lags - 1 + horizon, targets]; horizon=0 pairs a window with its own last row
    (regression on the recent past of other columns).

    An array gives the arrays (U, Y). An iterable gives a generator of (U, Y) blocks,
    one per block that completes a window, which joined equal the arrays; it holds
    one block and the last lags + horizon - 1 rows, whatever the stream's length.
    """
    lags, horizon = _count("lags", lags, 1), _count("horizon", horizon, 0)
    if isinstance(series, (np.ndarray, list, tuple)):
        x = _block(series, "series")
        cols_in, cols_out = _columns(inputs, targets, x.shape[1])
        return _windows(x, lags, horizon, cols_in, cols_out)
    return _lagged_blocks(series, lags, horizon, inputs, targets)


def _lagged_blocks(blocks, lags, horizon, inputs, targets):
    keep = lags + horizon - 1             # rows a window reaches back before a new block
    carry = None
    for index, block in enumerate(blocks):
        if isinstance(block, tuple) and len(block) == 1:     # from_file's blocks of one array
            block = block[0]
        x = _block(block, f"block {index}")
        if carry is None:
            cols_in, cols_out = _columns(inputs, targets, x.shape[1])
            carry = x[:0]
        elif x.shape[1] != carry.shape[1]:
            raise ValueError(f"block {index} has {x.shape[1]} columns, the blocks before it "
                             f"{carry.shape[1]}")
        joined = np.concatenate([carry, x]) if len(carry) else x
        if len(joined) >= lags + horizon:
            yield _windows(joined, lags, horizon, cols_in, cols_out)
        # a copy: the block itself may be freed (or be a view of a memory map)
        carry = joined[max(0, len(joined) - keep):].copy() if keep else joined[:0].copy()


def _windows(x, lags, horizon, cols_in, cols_out):
    rows = max(0, len(x) - lags - horizon + 1)
    # (len - lags + 1, columns, lags) views; each row becomes the steps of its window
    window = np.lib.stride_tricks.sliding_window_view(x[:, cols_in], lags, axis=0)[:rows]
    U = np.ascontiguousarray(window.transpose(0, 2, 1)).reshape(rows, lags * len(cols_in))
    Y = np.array(x[lags - 1 + horizon:lags - 1 + horizon + rows][:, cols_out], dtype=float)
    return U, Y


def _block(values, what):
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: not an array of numbers (blocks of a series are read from "
                         "an iterator: pass iter(blocks))") from None
    if x.ndim == 0:
        return x.reshape(1, 1)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim == 2:
        return x
    raise ValueError(f"{what}: expected values of shape (T,) or (T, n), got {x.shape}")


def _count(name, value, least):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} = {value!r}: must be an integer >= {least}")
    return int(value)


def _columns(inputs, targets, width):
    chosen = []
    for name, cols in (("inputs", inputs), ("targets", targets)):
        cols = list(range(width)) if cols is None else list(cols)
        if not cols:
            raise ValueError(f"{name} = []: give at least one column")
        for c in cols:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < width:
                raise ValueError(f"{name}: column {c!r} is not one of the series' columns "
                                 f"0..{width - 1}")
        chosen.append([int(c) for c in cols])
    return chosen
