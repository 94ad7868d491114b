"""Per-weight hyperparameters as the user gives them: beta={"W1": 0.1, ("W2", "b2"): 0.5}.

A module generated with per_weight (hamsym.codegen.per_weight) has, for each such
weight W, the scalars gamma__W, beta__W and theta__W, ordinary hyperparameters of its
learners. Here a dict given for gamma, beta or theta becomes those scalars (a key names
a weight, a tuple key a group of weights), and a per-weight value left None takes the
global one when the step is called.
"""

KINDS = ("gamma", "beta", "theta")


def scalar(kind, weight):
    return f"{kind}__{weight}"


def follows(name):
    """The hyperparameter whose value `name` takes when it is None (None: it must be set)."""
    if name == "theta_neurons":
        return "theta"
    kind, sep, _ = name.partition("__")
    return kind if sep and kind in KINDS else None


def expand(hyper, tables):
    """hyper with every dict value of gamma, beta or theta replaced by the per-weight
    scalars it names. Errors name the argument: an unknown weight lists the module's
    weights; a weight without its own scalars says how to generate them."""
    out = {}
    for name, value in hyper.items():
        if name not in KINDS or not isinstance(value, dict):
            out[name] = value
            continue
        for key, v in value.items():
            for w in (key if isinstance(key, tuple) else (key,)):
                where = f"{name}={{{key!r}: ...}}"
                if w not in tables.weights:
                    raise KeyError(f"{where}: {w!r} is not a weight of {tables.module}; its "
                                   f"weights: {', '.join(tables.weights)}")
                if w not in tables.per_weight:
                    raise TypeError(
                        f"{where}: {tables.module} has one {name} for all weights: generate it "
                        f"with per-weight hyperparameters for {w!r} (hs.generate or hs.load "
                        f"with per_weight=[{w!r}], or a [hyper.{w}] table in its spec file)"
                        + (f"; weights with their own: {', '.join(tables.per_weight)}"
                           if tables.per_weight else ""))
                out[scalar(name, w)] = v
    return out


def resolve(h, weights):
    """The values the step uses: h (a dict of one learner's values) with None taking the
    global value. A per-weight gamma scales the gradient, gamma times the loss's, by
    gamma_w/gamma: refused at gamma = 0, where it cannot."""
    if h.get("theta_neurons", 0.0) is None:         # not set: decay like the weights'
        h["theta_neurons"] = h["theta"]
    for w in weights:
        for kind in KINDS:
            n = scalar(kind, w)
            if h[n] is None:
                h[n] = h[kind]
        g = h[scalar("gamma", w)]
        if h["gamma"] == 0 and g != 0:
            raise ValueError(f"gamma__{w} = {g} with gamma = 0: a weight's own gamma scales "
                             "its gradient by gamma_w/gamma, so the global gamma must not be 0")
    return h
