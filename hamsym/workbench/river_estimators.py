"""The river estimators of hamsym.workbench.river (imported from there, with river).

They are river estimators by river's own checks (`river.checks.yield_checks`, run in
tests/test_river_checks.py): picklable (top-level classes; the learner pickles by its
module's file), clonable (clone() copies the learner as it is, as river's wrappers of
scikit-learn models copy theirs), with a repr that names the learner's module, and
default parameters for river's tests (a small MLP generated into a cache folder).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from river import base


class _Adapter:
    """dict -> input vector, and the network's output."""

    def __init__(self, learner, features=None, output="o"):
        self.learner = learner
        self.features = None if features is None else tuple(features)
        self.output = output
        module = _module_of(learner)
        if len(module.INPUTS) != 1 or len(module.TARGETS) != 1:
            raise ValueError("the river adapter needs a network with one input and one target, "
                             f"not {list(module.INPUTS)} and {list(module.TARGETS)}")
        if output not in module.OUTPUTS and output not in module.STATES:
            raise ValueError(f"output = {output!r}: not an output or state of "
                             f"{module.__name__}; those are "
                             f"{list(module.OUTPUTS) + list(module.STATES)}")
        self._n_in = int(np.prod(next(iter(module.INPUTS.values()))))
        self._n_out = int(np.prod(next(iter(module.TARGETS.values()))))
        if self.features is not None and len(self.features) != self._n_in:
            raise ValueError(f"{len(self.features)} features but the input has {self._n_in} "
                             "entries")
        # feature -> input entry; without `features`, names take free entries as they come
        self._slots = {} if self.features is None else {k: i for i, k in enumerate(self.features)}

    def _vector(self, x, learn=False):
        """The input vector of x: a missing feature is 0 (as in river's linear models);
        learning, a feature never seen takes a free entry (in sorted order, so that the
        order of the dict does not matter)."""
        if learn and self.features is None:
            new = sorted((k for k in x if k not in self._slots), key=repr)
            if len(self._slots) + len(new) > self._n_in:
                raise ValueError(f"feature {new[0]!r} is new, but the network's {self._n_in} "
                                 f"inputs are taken by {list(self._slots)}; give features= "
                                 "to choose which the network reads")
            for k in new:
                self._slots[k] = len(self._slots)
        u = np.zeros(self._n_in)
        for k, i in self._slots.items():
            if k in x:
                u[i] = float(x[k])
        return u

    def _out(self, x):
        learner = self.learner
        if self.output in learner.states:       # a state network answers with its state
            return np.asarray(learner.states[self.output], dtype=float).ravel()
        return np.asarray(learner.forward(self._vector(x))[self.output], dtype=float).ravel()

    def __repr__(self):
        # river shows each parameter; the learner by its module and progress (its own
        # repr carries a memory address, which a clone would not share)
        lines = [f"{type(self).__name__} ("]
        for name, value in self._get_params().items():
            if name == "learner":
                value = (f"{type(value).__module__}.Integrator (SPEC_HASH "
                         f"{_module_of(value).SPEC_HASH[:12]}, step_count {value.step_count})")
            elif isinstance(value, str):
                value = f'"{value}"'
            lines.append(f"  {name}={value}")
        return "\n".join(lines + [")"])


class Regressor(_Adapter, base.Regressor):
    """A hamsym learner as a river regressor.

    `learn_one` takes one compiled step of the learner (Hamilton's equations, one sample);
    `predict_one` is the network's output (its first entry) computed by the compiled
    forward pass, or the state named by `output`.

    Parameters
    ----------
    learner
        An Integrator of a generated module with one input and one target; it learns in
        place. `clone()` copies it as it is at that moment.
    features
        The feature names, in the order of the input's entries. None: the names take the
        entries in the order they are first learned (sorted within a sample). A feature
        missing from a sample is 0; one not among them is ignored.
    output
        The output (an instantaneous neuron that reads no target) or state to predict.

    Examples
    --------
    >>> import hamsym as hs
    >>> from river import datasets, evaluate, metrics, preprocessing
    >>> from hamsym.workbench.river import Regressor
    >>> module = hs.load(hs.derive(hs.zoo.mlp([6, 16, 1]), theta=0.1), "generated/trump.py")
    >>> model = preprocessing.StandardScaler() | Regressor(module.Integrator(seed=0))
    >>> evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE())
    MAE: ...

    """

    def learn_one(self, x, y):
        self.learner.step(self._vector(x, learn=True), np.full(self._n_out, float(y)))

    def predict_one(self, x):
        return float(self._out(x)[0])

    @classmethod
    def _unit_test_params(cls):
        yield {"learner": default_learner("regressor")}


class Classifier(_Adapter, base.Classifier):
    """A hamsym learner as a river classifier: the target is one-hot over `classes`, the
    probabilities are the softmax of the output.

    Parameters
    ----------
    learner
        An Integrator of a generated module with one input and one target of
        len(classes) entries (a cross-entropy loss fits); it learns in place.
    classes
        The labels, in the order of the target's entries.
    features
        As for Regressor: the feature names in input order, or None (as they come).
    output
        The output whose softmax gives the probabilities.

    Examples
    --------
    >>> import hamsym as hs
    >>> from river import datasets, evaluate, metrics
    >>> from hamsym.workbench.river import Classifier
    >>> net = hs.zoo.mlp([9, 16, 2], loss="cross_entropy")
    >>> module = hs.load(hs.derive(net, theta=0.1, delta=0.3), "generated/phishing.py")
    >>> model = Classifier(module.Integrator(seed=0), classes=[False, True])
    >>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
    Accuracy: ...

    """

    def __init__(self, learner, classes, features=None, output="o"):
        super().__init__(learner, features, output)
        self.classes = classes
        if len(list(classes)) != self._n_out:
            raise ValueError(f"{len(list(classes))} classes, but the target has {self._n_out} "
                             "entries")

    @property
    def _multiclass(self):
        return len(list(self.classes)) > 2

    def learn_one(self, x, y):
        labels = list(self.classes)
        if y not in labels:
            raise ValueError(f"label {y!r} is not one of the classes {labels}")
        onehot = np.zeros(self._n_out)
        onehot[labels.index(y)] = 1.0
        self.learner.step(self._vector(x, learn=True), onehot)

    def predict_proba_one(self, x):
        z = self._out(x)
        p = np.exp(z - z.max())
        p /= p.sum()
        return dict(zip(self.classes, map(float, p)))

    @classmethod
    def _unit_test_params(cls):
        yield {"learner": default_learner("classifier"), "classes": (False, True)}


def _module_of(learner):
    module = sys.modules.get(type(learner).__module__)
    if getattr(module, "SPEC_HASH", None) is None or not isinstance(learner, module.Integrator):
        raise TypeError(f"learner: expected an Integrator of a generated module, not "
                        f"{type(learner).__name__}")
    return module


@functools.cache
def default_module(kind):
    """The module of river's default test network: a 6-16-1 tanh MLP with squared loss
    (a regressor, for TrumpApproval's 6 features) or 9-16-2 with cross-entropy (a
    classifier, for Phishing's 9), generated once into cache_folder()."""
    from ..codegen.render import default_path, load, render
    from ..declare.zoo import mlp
    from ..derive.hamiltonian import derive
    if kind == "regressor":
        net = mlp([6, 16, 1], name="river_regressor")
    else:
        net = mlp([9, 16, 2], loss="cross_entropy", name="river_classifier")
    system = derive(net, beta=1.0, theta=0.1, delta=0.1)
    return load(system, cache_folder() / default_path(system, render(system)).name)


def default_learner(kind):
    """A fresh learner of default_module(kind), seed 0."""
    return default_module(kind).Integrator(seed=0)


def cache_folder():
    """$HAMSYM_CACHE, else $XDG_CACHE_HOME/hamsym (~/.cache/hamsym), made private to the
    user; a new temporary folder where neither can be made."""
    root = os.environ.get("HAMSYM_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hamsym"
    try:
        Path(root).mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return Path(root)
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="hamsym-"))
