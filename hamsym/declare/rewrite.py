"""Walking and rewriting expression graphs: traversal, substitution, expansion
of named definitions (instants, messages) into the expressions that use them."""

from __future__ import annotations

from .expr import (Add, Apply, Const, Expr, Hadamard, Inner, MatMul, Reciprocal, Scale, Transpose,
                   Var, add, hadamard, inner, is_zero, matmul, reciprocal, scale, transpose)


def walk(expr, children=None):
    """Every node once, children before parents (deterministic order).

    children(node) may narrow what is entered (default: all of node's children)."""
    children = children or Expr.children
    seen, order, stack = set(), [], [(expr, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(children(node)))
    return order


def rebuild(node, args):
    """node with its children replaced by args, through the simplifying builders."""
    if args == node.args:
        return node
    if isinstance(node, Add):
        # not flattened: a substituted definition (o = W h + b) stays a node of its own
        kept = [a for a in args if not is_zero(a)]
        return Add(*kept, shape=node.shape) if len(kept) > 1 and not all(
            isinstance(a, Const) for a in kept) else add(*kept, *([] if kept else args))
    if isinstance(node, Scale):
        return scale(*args)
    if isinstance(node, Reciprocal):
        return reciprocal(*args)
    # products keep their structure too: pulling a scalar out of a substituted
    # message would hide it from the code generator's sharing of stored values
    if isinstance(node, (MatMul, Hadamard)) and not any(is_zero(a) for a in args):
        return type(node)(*args, shape=node.shape)
    if isinstance(node, MatMul):
        return matmul(*args)
    if isinstance(node, Transpose):
        return transpose(*args)
    if isinstance(node, Hadamard):
        return hadamard(*args)
    if isinstance(node, Apply):
        return Apply(node.activation, *args)
    if isinstance(node, Inner):
        return inner(*args)
    return type(node)(*args, shape=node.shape)


def substitute(expr, table, value=None):
    """expr with every Var found in table replaced by its value (one pass);
    value(var) may compute the replacement instead of reading it from table."""
    value = value or table.__getitem__
    done = {}
    for node in walk(expr):
        if isinstance(node, Var):
            done[node] = value(node) if node in table else node
        elif node.args:
            done[node] = rebuild(node, tuple(done[a] for a in node.args))
        else:
            done[node] = node
    return done[expr]


def expand(expr, table, memo=None):
    """Substitute named definitions (instants, messages), themselves expanded,
    until none is left. memo keeps expanded definitions across calls."""
    memo = {} if memo is None else memo

    def value(var):
        if var not in memo:
            memo[var] = substitute(table[var], table, value)
        return memo[var]
    return substitute(expr, table, value)
