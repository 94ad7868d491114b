"""Progress bars (tqdm, imported when asked for) advanced between compiled slices."""

import sys

import numpy as np


def length_of(samples):
    """len(samples), or None for a stream of unknown length (an iterator)."""
    try:
        return len(samples)
    except TypeError:
        return None


def progress_bar(progress, total):
    """(bar or None, whether this call owns it). progress: None (a bar when stderr is a
    terminal and tqdm is installed), True/False, a dict of tqdm options, or a bar."""
    if progress is None or progress is False:
        if progress is False or not getattr(sys.stderr, "isatty", lambda: False)():
            return None, False
        try:
            from tqdm import tqdm
        except ImportError:
            return None, False
        return tqdm(total=total, unit="step", dynamic_ncols=True), True
    if hasattr(progress, "update") and not isinstance(progress, dict):
        return progress, False
    if progress is not True and not isinstance(progress, dict):
        raise TypeError(f"progress = {progress!r}: expected None, True, False, a dict of tqdm "
                        "options or a tqdm bar")
    try:
        from tqdm import tqdm
    except ImportError:
        raise ImportError("progress=True needs tqdm: pip install tqdm "
                          "(or pip install 'hamsym[progress]')") from None
    options = {"total": total, "unit": "step", "dynamic_ncols": True}
    options.update(progress if isinstance(progress, dict) else {})
    return tqdm(**options), True


def tick(bar, losses):
    """Advance a progress bar by the steps of one slice; show their mean loss."""
    if len(losses):
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"loss={float(np.mean(losses)):.4g}", refresh=False)
        bar.update(len(losses))


def tick_best(bar, losses):
    """Advance a progress bar by the rows of one slice of (K, n) losses; show the lowest
    mean loss of a learner over them (frozen learners' NaN rows left out)."""
    finite = np.isfinite(losses).all(axis=1)
    if hasattr(bar, "set_postfix_str") and finite.any() and losses.shape[1]:
        bar.set_postfix_str(f"best loss={float(losses[finite].mean(axis=1).min()):.4g}",
                            refresh=False)
    bar.update(losses.shape[1])
