"""river interop (the `river` extra): a generated learner as a river estimator.

    from river import evaluate, metrics
    model = hamsym.workbench.river.Regressor(learner, features=["x0", "x1"], output="o")
    evaluate.progressive_val_score(dataset, model, metrics.MAE())

river hands one sample at a time as a dict, so each `learn_one` converts a dict to
an array and calls the compiled `step` from Python: that costs microseconds of
Python per sample where `Integrator.run` keeps the whole loop in compiled code (see
docs/workbench.md for measured numbers). The adapter is for using hamsym learners
inside river's tooling, not for speed.
"""

from __future__ import annotations

import numpy as np


def _river_base():
    try:
        from river import base
    except ImportError:
        raise ImportError("the river adapter needs river: pip install 'hamsym[river]'") from None
    return base


class _Adapter:
    """Shared part: dict -> input vector, and reading the network's output."""

    def __init__(self, learner, features=None, output="o", target=None):
        self.learner = learner
        self.features = list(features) if features is not None else None
        self.output = output
        module = _module_of(learner)
        if len(module.INPUTS) != 1 or len(module.TARGETS) != 1:
            raise ValueError("the river adapter needs a network with one input and one target, "
                             f"not {list(module.INPUTS)} and {list(module.TARGETS)}")
        shape, tshape = next(iter(module.INPUTS.values())), next(iter(module.TARGETS.values()))
        self._n_in, self._n_out = int(np.prod(shape)), int(np.prod(tshape))
        self.target = target

    def _vector(self, x):
        if self.features is None:               # first sample fixes the feature order
            self.features = sorted(x)
        if len(self.features) != self._n_in:
            raise ValueError(f"{len(self.features)} features but the input has {self._n_in} entries")
        return np.array([float(x.get(k, 0.0)) for k in self.features])

    def _out(self, x):
        learner = self.learner
        if self.output in learner.states:       # a state network answers with its state
            return np.asarray(learner.states[self.output], dtype=float).ravel()
        return np.asarray(learner.forward(self._vector(x))[self.output], dtype=float).ravel()


def _module_of(learner):
    import sys
    return sys.modules[type(learner).__module__]


def Regressor(learner, features=None, output="o"):
    """A river regressor that learns with `learner.step` and predicts its output[0]."""
    base = _river_base()

    class HamsymRegressor(_Adapter, base.Regressor):
        def learn_one(self, x, y):
            self.learner.step(self._vector(x), np.full(self._n_out, float(y)))

        def predict_one(self, x):
            return float(self._out(x)[0])

    return HamsymRegressor(learner, features, output)


def Classifier(learner, classes, features=None, output="o"):
    """A river classifier: target one-hot over `classes`, probabilities softmax(output)."""
    base = _river_base()
    classes = list(classes)

    class HamsymClassifier(_Adapter, base.Classifier):
        def learn_one(self, x, y):
            onehot = np.zeros(self._n_out)
            onehot[classes.index(y)] = 1.0
            self.learner.step(self._vector(x), onehot)

        def predict_proba_one(self, x):
            z = self._out(x)
            p = np.exp(z - z.max())
            p /= p.sum()
            return dict(zip(classes, map(float, p)))

        def predict_one(self, x):
            proba = self.predict_proba_one(x)
            return max(proba, key=proba.get)

    return HamsymClassifier(learner, features, output, target=classes)
