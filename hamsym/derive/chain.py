"""The chain rule over a declared network: reverse-mode accumulation of adjoints.

Each node knows its own vector-Jacobian product (``Expr.vjp``); this module only
orders the sweep. Instantaneous neurons are kept as names: the adjoint of an
instant h becomes a named backward message ``dH_dh``, so the results read like
layer-by-layer backpropagation (``W2.T @ dH_do``) instead of one nested expression,
and the code generator can materialize each message once.
"""

from __future__ import annotations

from ..declare.expr import Var, add
from ..declare.rewrite import walk


def _graph(roots, instants):
    """Nodes reachable from roots, children first; an instant's child is its definition."""
    def children(n):
        return (instants[n.name],) if isinstance(n, Var) and n.kind == "instant" else n.children()

    order, seen = [], set()
    for root in reversed(roots):   # each walk is children-first, so their union is too
        for node in walk(root, children):
            if node not in seen:
                seen.add(node)
                order.append(node)
    return order


def gradients(seeds, wrt, instants, message_name=lambda name: f"dH_d{name}"):
    """Adjoints of `wrt` for the scalar sum_i <seed_adjoint_i, seed_expr_i>.

    seeds:    [(expr, adjoint)]; adjoint has expr's shape.
    wrt:      Vars (states, weights) whose gradients are wanted.
    instants: name -> definition.
    Returns (grads: {var: expr}, messages: [(message Var, expr)] in evaluation order).
    """
    roots = [e for e, _ in seeds]
    order = _graph(roots, instants)
    targets = set(wrt)

    # which nodes lead to a variable we differentiate: only those get adjoints
    live = set()
    for node in order:
        kids = (instants[node.name],) if isinstance(node, Var) and node.kind == "instant" \
            else node.children()
        if node in targets or any(k in live for k in kids):
            live.add(node)

    pending = {}
    for expr, adj in seeds:
        if expr in live:
            pending.setdefault(expr, []).append(adj)

    grads, messages = {}, []
    for node in reversed(order):
        if node not in pending:
            continue
        g = add(*pending.pop(node))
        if isinstance(node, Var):
            if node.kind == "instant":
                msg = Var(message_name(node.name), node.shape, "message")
                messages.append((msg, g))
                pending.setdefault(instants[node.name], []).append(msg)
            elif node in targets:
                grads[node] = g
            continue
        for child, contribution in node.vjp(g):
            if child in live:
                pending.setdefault(child, []).append(contribution)
    for v in wrt:
        grads.setdefault(v, None)
    return grads, messages
