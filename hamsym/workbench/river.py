"""river interop (the `river` extra): a generated learner as a river estimator.

    from river import evaluate, metrics
    model = hamsym.workbench.river.Regressor(learner, features=["x0", "x1"], output="o")
    evaluate.progressive_val_score(dataset, model, metrics.MAE())

`Regressor` and `Classifier` are river estimators by river's own standard (all of
`river.checks.yield_checks` pass). They live in `river_estimators`, which imports
river; importing this module does not, so `import hamsym` works without river.

river hands one sample at a time as a dict, so each `learn_one` converts a dict to
an array and calls the compiled `step` from Python: that costs microseconds of
Python per sample where `Integrator.run` keeps the whole loop in compiled code (see
docs/workbench.md for measured numbers). The adapter is for using hamsym learners
inside river's tooling, not for speed.
"""

from __future__ import annotations

_ESTIMATORS = ("Regressor", "Classifier")


def __getattr__(name):
    if name not in _ESTIMATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from . import river_estimators
    except ImportError as err:
        if getattr(err, "name", None) != "river":
            raise
        raise ImportError("the river adapter needs river: pip install 'hamsym[river]'") from None
    return getattr(river_estimators, name)


def __dir__():
    return sorted(list(globals()) + list(_ESTIMATORS))
