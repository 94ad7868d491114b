"""What the runtime reads of a generated module: its tables and its kernels.

A generated module holds the network's compiled functions and tables of names and
shapes; everything else is this runtime, which learns the network from the tables. So
the runtime is the same Python for every network, tested as it is.
"""

import os

import numpy as np


class Tables:
    """A generated module's tables (names, shapes, argument orders) and kernels, read
    from its namespace. The tables are dicts name -> storage shape, in the order the
    kernels take them."""

    def __init__(self, namespace):
        ns = namespace
        self.namespace = ns
        self.module = ns["__name__"]
        self.file = os.path.abspath(ns["__file__"]) if ns.get("__file__") else None
        self.spec_hash, self.structure = ns["SPEC_HASH"], ns["STRUCTURE"]
        self.dtype = np.dtype(ns["DTYPE"])
        self.scheme = ns["SCHEME"]
        self.reset_weight_costate = ns["RESET_WEIGHT_COSTATE"]
        self.fresh_weight_costate = ns["FRESH_WEIGHT_COSTATE"]
        self.inputs, self.targets = ns["INPUTS"], ns["TARGETS"]
        self.weights, self.states = ns["WEIGHTS"], ns["STATES"]
        self.hyper, self.params = ns["HYPER"], ns["PARAMS"]
        self.per_weight = ns["PER_WEIGHT"]      # weights with their own gamma, beta, theta
        self.work, self.record, self.metrics = ns["WORK"], ns["RECORD"], ns["METRICS"]
        self.forward_buffers, self.outputs = ns["FORWARD"], ns["OUTPUTS"]
        self.forward_args, self.advance_buffers = ns["FORWARD_ARGS"], ns["ADVANCE"]
        self.scalars, self.bound = ns["SCALARS"], ns["BOUND"]
        self.data = {**self.inputs, **self.targets}
        self.costates = {**self.weights, **self.states}
        self.known = list(self.hyper) + list(self.params)
        # step()'s arrays that a learner holds, in order: (table, key)
        self.arrays = [(table, key) for table, key, _ in self.bound if table != "work"]
        self.span, self.span_record = ns["_span"], ns["_span_record"]
        self.forward, self.predict = ns["forward"], ns["_predict"]
        self.bound_step = ns["_bound_step"]
        self.steppers = {}                      # dtype -> the bound step compiled for it
        self.ensemble_span, self.ensemble_roles = ns["_ensemble_span"], ns["ENSEMBLE_ROLES"]
        self.distributed_reason = ns["DISTRIBUTED_REASON"]
        self.units, self.channels = ns["UNITS"], ns["CHANNELS"]
        self.rank_loop = ns.get("rank_loop")

    def __repr__(self):
        return f"<tables of {self.module}>"
