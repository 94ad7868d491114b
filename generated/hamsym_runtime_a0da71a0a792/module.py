"""What a generated module imports: its classes, built from its tables, and the Numba
helpers its kernels call."""

import types

import numba

from . import DIGEST  # noqa: F401 (the generated module checks it)
from . import ensemble, interrupt, learner, metrics, recorder
from .checkpoint import CheckpointError
from .checks import HyperparameterWarning
from .jit import HOT, JIT, portable_cache  # noqa: F401 (the kernels' compile options)
from .tables import Tables
from .vector_math import _dot as dot, _tanh as tanh  # noqa: F401 (vectorising kernels)
from .views import view  # noqa: F401 (the bound step's arrays)


def build(namespace):
    """The classes of the generated module whose globals are `namespace`: each a
    subclass of the runtime's, holding the module's tables, and named as the module's."""
    for value in namespace.values():
        if isinstance(value, numba.core.dispatcher.Dispatcher):
            portable_cache(value)
    t = Tables(namespace)

    def subclass(base, name=None, **attributes):
        name = name or base.__name__
        return type(name, (base,), {"__module__": t.module, "__qualname__": name,
                                    "__doc__": base.__doc__, **attributes})

    measured = {f"{k}{b}" for k in t.metrics.get("keys", ()) for b in ("", "_baseline")}
    recorder_class = subclass(recorder.Recorder, _table=t.record, _default_dtype=t.dtype,
                              _metric_keys=frozenset(measured & set(t.record)))
    metrics_class = subclass(metrics.Metrics, _table=t.metrics)
    fast = {1: learner.Integrator._step_1, 2: learner.Integrator._step_2}.get(len(t.data))
    integrator = subclass(learner.Integrator, _t=t, _recorder_class=recorder_class,
                          _metrics_class=metrics_class, **({"step": fast} if fast else {}))
    from . import distributed
    return types.SimpleNamespace(
        tables=t, Integrator=integrator, Recorder=recorder_class, Metrics=metrics_class,
        Ensemble=subclass(ensemble.Ensemble, _t=t, _learner=integrator),
        DistributedIntegrator=distributed.build(t, integrator, subclass),
        DISTRIBUTABLE=t.distributed_reason is None,
        Interrupted=interrupt.Interrupted, DivergenceError=interrupt.DivergenceError,
        DivergenceWarning=ensemble.DivergenceWarning,
        HyperparameterWarning=HyperparameterWarning, CheckpointError=CheckpointError,
        RankFailure=distributed.RankFailure)
