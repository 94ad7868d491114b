"""A learner's live tables: dicts whose keys are fixed and whose values are checked
when set, so no unchecked array ever reaches the compiled code."""

import numpy as np

from . import checks


class Fixed(dict):
    """A dict whose keys are fixed and whose values are checked when set."""

    edition = 0     # counts the sets of all of them: a learner rebinds its step when it moves
    _what = "entry"

    def _check(self, name, value):
        raise NotImplementedError

    def __setitem__(self, name, value):
        super().__setitem__(name, self._check(name, value))
        Fixed.edition += 1

    def update(self, *args, **kwargs):
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, name, value=None):
        if name not in self:
            self[name] = value                  # refused: the keys are fixed
        return self[name]

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"the keys of {self._what}s are fixed: {list(self)}")

    def __reduce__(self):
        # a copy or a pickle is a plain dict: a snapshot, not a second live view
        return dict, (dict(self),)

    __delitem__ = pop = popitem = clear = _refuse


class Arrays(Fixed):
    """name -> live array. A new array is checked against the declaration (shape,
    dtype, layout; converted in a copy when needed)."""

    replaced = 0    # counts the arrays set in all of them (and tables replaced whole)

    def __init__(self, what, declared, dtype, values):
        super().__init__(values)
        self._what, self._declared, self._dtype = what, declared, dtype

    def _check(self, name, value):
        if name not in self._declared:
            raise KeyError(f"unknown {self._what} {name!r}; declared: {list(self._declared)}")
        return checks.fit(value, self._declared[name], self._dtype, f"{self._what} {name!r}",
                          False)

    def __setitem__(self, name, value):
        super().__setitem__(name, value)
        Arrays.replaced += 1


class Hyper(Fixed):
    """Hyperparameters and params by name, checked when set. .scalars caches what the
    learner passes the kernels; a set makes it stale."""

    _what = "hyperparameter"

    def __init__(self, values, known):
        super().__init__()
        self._known = known
        self.scalars = None
        self.update(values)

    def _check(self, name, value):
        self.scalars = None
        return checks.hyper(name, value, self._known, stacklevel=5)


class PerLearner(Fixed):
    """An ensemble's hyperparameters and params by name: a tuple of one value per
    learner, checked when set (from one value for all learners, or one per learner)."""

    _what = "hyperparameter"

    def __init__(self, count, values, known):
        super().__init__()
        self._count, self._known, self.scalars = count, known, None
        self.update(values)

    def _check(self, name, value):
        self.scalars = None
        return per_learner(name, value, self._count, self._known)


def per_learner(name, value, count, known):
    """One checked value of hyperparameter or param `name` per learner: a tuple."""
    if name not in known:
        raise TypeError(f"unknown hyperparameter {name!r}; known: {list(known)}")
    if value is None or np.ndim(value) == 0:
        values = [value] * count
    else:
        values = list(value) if np.ndim(value) == 1 else None
        if values is None or len(values) != count:
            raise ValueError(f"{name} has shape {np.shape(value)}: give one value, or one per "
                             f"learner ({count})")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(checks.hyper(name, v.item() if isinstance(v, np.generic) else v, known,
                                    stacklevel=6))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"learner {i}: {exc}") from None
    return tuple(out)


def whole_hyper(values, known):
    """values, when it names every hyperparameter and param: a table replaced whole."""
    missing = [n for n in known if n not in values]
    if missing:
        raise KeyError(f"hyperparameters {missing} missing")
    return values
