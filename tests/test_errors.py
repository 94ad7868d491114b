"""Bad declarations fail early, with a hamsym error that names the culprit.

hamsym raises ``DeclarationError`` (``ShapeError``, a subclass, for shapes) at the
line that wrote the mistake, in the user's own names. A failed
call leaves nothing behind: a failed declaration does not register its name, and a
failed derive() changes nothing and returns nothing.
"""

from __future__ import annotations

import re

import pytest
import sympy

import hamsym as hs

pytestmark = pytest.mark.fast


def names_all(err, *names):
    """The message of err mentions every one of names."""
    msg = str(err.value)
    missing = [n for n in names if n not in msg]
    assert not missing, f"message {msg!r} does not name {missing}"


@pytest.fixture
def net():
    net = hs.Network("n")
    net.input("u", 4)
    net.target("y", 2)
    net.weight("W1", (3, 5))
    net.weight("W", (3, 4))
    net.weight("b", 2)
    return net


def snapshot(net):
    return (dict(net.vars), dict(net.instants), dict(net.dynamics_of), dict(net.defaults), net.loss_expr)


def test_shape_error_is_a_declaration_error():
    assert issubclass(hs.ShapeError, hs.DeclarationError)


# -- shapes -------------------------------------------------------------------------------

def test_product_shape_mismatch(net):
    W1, u = net.vars["W1"], net.vars["u"]
    with pytest.raises(hs.ShapeError) as err:
        W1 @ u
    names_all(err, "W1", "u", "3x5", "4x1")


def test_sum_shape_mismatch(net):
    W, u, b = net.vars["W"], net.vars["u"], net.vars["b"]
    with pytest.raises(hs.ShapeError) as err:
        W @ u + b
    names_all(err, "W @ u", "b", "3x1", "2x1")
    with pytest.raises(hs.ShapeError) as err:
        W @ u - net.vars["y"]
    names_all(err, "W @ u", "y")


def test_elementwise_shape_mismatch(net):
    with pytest.raises(hs.ShapeError) as err:
        hs.tanh(net.vars["W"] @ net.vars["u"]) * net.vars["b"]
    names_all(err, "W @ u", "b")


def test_loss_not_scalar(net):
    with pytest.raises(hs.ShapeError) as err:
        net.loss(net.vars["W"] @ net.vars["u"])
    names_all(err, "loss", "W @ u", "3x1", "not a scalar")


def test_dynamics_of_wrong_shape(net):
    x = net.state("x", 3)
    with pytest.raises(hs.ShapeError) as err:
        net.dynamics(x, -net.vars["b"])
    names_all(err, "'x'", "3x1", "2x1")


@pytest.mark.parametrize("size", [0, -1, (0, 3), (2, 3, 4), (2.0, 3), "3", (True, 2), 2.5, None])
def test_bad_sizes(net, size):
    with pytest.raises(hs.DeclarationError) as err:
        net.weight("Q", size)
    names_all(err, "'Q'", repr(size))
    assert "Q" not in net.vars


# -- names ----------------------------------------------------------------------------------

def test_undeclared_variable_from_another_network(net):
    other = hs.Network("other")
    V = other.weight("V", (3, 4))
    u = net.vars["u"]
    with pytest.raises(hs.DeclarationError) as err:
        net.instant("h", hs.tanh(V @ u))
    names_all(err, "`V`", "'h'", "'n'")
    with pytest.raises(hs.DeclarationError) as err:
        net.loss(hs.sum_squares(V @ u))
    names_all(err, "`V`", "loss")
    x = net.state("x", 3)
    with pytest.raises(hs.DeclarationError) as err:
        net.dynamics(x, V @ u)
    names_all(err, "`V`", "'x'")
    xo = other.state("xo", 3)
    with pytest.raises(hs.DeclarationError) as err:
        net.dynamics(xo, -x)
    names_all(err, "xo", "not a state of network 'n'")


def test_same_name_other_shape_from_another_network_is_not_ours(net):
    other = hs.Network("other")
    W = other.weight("W", (2, 2))           # same name as net's W, another variable
    with pytest.raises(hs.DeclarationError) as err:
        net.loss(hs.sum_squares(W))
    names_all(err, "`W`", "not declared")


@pytest.mark.parametrize("declare", ["input", "target", "weight", "state", "param"])
def test_reused_name(net, declare):
    arg = 1.0 if declare == "param" else 3
    with pytest.raises(hs.DeclarationError) as err:
        getattr(net, declare)("W", arg)
    names_all(err, "'W'", "already declared", "weight")
    with pytest.raises(hs.DeclarationError) as err:
        net.instant("W1", hs.tanh(net.vars["W"] @ net.vars["u"]))
    names_all(err, "'W1'", "already declared")


@pytest.mark.parametrize("name", ["2x", "a-b", "x y", "", "é-1"])
def test_name_not_an_identifier(net, name):
    with pytest.raises(hs.DeclarationError) as err:
        net.weight(name, 3)
    names_all(err, repr(name), "identifier")


@pytest.mark.parametrize("name", ["lambda", "class", "def", "None", "match"])
def test_name_is_a_keyword(net, name):
    with pytest.raises(hs.DeclarationError) as err:
        net.state(name, 3)
    names_all(err, repr(name), "keyword")


@pytest.mark.parametrize("name", ["gamma", "delta", "flip", "p_W", "dH_dh", "_x", "sum"])
def test_name_reserved(net, name):
    with pytest.raises(hs.DeclarationError) as err:
        net.param(name, 1.0)
    names_all(err, repr(name))


def test_network_name_checked():
    for name in ["2net", "class", "a-b"]:
        with pytest.raises(hs.DeclarationError) as err:
            hs.Network(name)
        names_all(err, repr(name))


# -- activations ----------------------------------------------------------------------------

@pytest.mark.parametrize("fn, name", [(sympy.sign, "sign"), (sympy.floor, "floor"),
                                      (sympy.Function("g"), "g"), (sympy.Heaviside, "Heaviside")])
def test_non_differentiable_activation(fn, name):
    with pytest.raises(hs.DeclarationError) as err:
        hs.activation(fn)
    names_all(err, name, "not differentiable")


def test_activation_given_a_name_is_named_in_the_error():
    with pytest.raises(hs.DeclarationError) as err:
        hs.activation(lambda t: sympy.floor(t) * t, name="stairs")
    names_all(err, "stairs", "not differentiable")


def test_activation_with_extra_symbols():
    a = sympy.Symbol("a")
    with pytest.raises(hs.DeclarationError) as err:
        hs.activation(lambda t: sympy.tanh(a * t), name="scaled")
    names_all(err, "scaled", "a")


def test_differentiable_activation_is_accepted():
    act = hs.activation(sympy.atan)
    assert act.derivative.expr == sympy.diff(sympy.atan(hs.declare.activations.t), hs.declare.activations.t)


# -- missing pieces, at derive -----------------------------------------------------------------

def test_no_loss_at_derive(net):
    net.dynamics(net.state("x", 3), -net.vars["W"] @ net.vars["u"])
    with pytest.raises(hs.DeclarationError) as err:
        hs.derive(net)
    names_all(err, "'n'", "no loss")


def test_state_without_dynamics_at_derive(net):
    x = net.state("x", 3)
    net.loss(hs.sum_squares(x))
    with pytest.raises(hs.DeclarationError) as err:
        hs.derive(net)
    names_all(err, "'x'", "no dynamics")


def test_bad_hyperparameters_at_derive(net):
    net.loss(hs.sum_squares(net.vars["W"] @ net.vars["u"]))
    with pytest.raises(hs.DeclarationError) as err:
        hs.derive(net, gama=1.0)
    names_all(err, "gama")
    with pytest.raises(hs.DeclarationError) as err:
        hs.derive(net, flip=0)
    names_all(err, "flip")
    with pytest.raises(hs.DeclarationError) as err:
        hs.derive(net, delta=-0.1)
    names_all(err, "delta")


def test_dynamics_declared_twice(net):
    x = net.state("x", 3)
    net.dynamics(x, -x)
    with pytest.raises(hs.DeclarationError) as err:
        net.dynamics(x, x)
    names_all(err, "'x'", "already")


def test_cross_entropy_target_must_be_data(net):
    W, u = net.vars["W"], net.vars["u"]
    with pytest.raises(hs.DeclarationError) as err:
        net.loss(hs.softmax_cross_entropy(W @ u, hs.tanh(W @ u)))
    names_all(err, "W")


# -- nothing is half-done ------------------------------------------------------------------------

def test_failed_derive_changes_nothing_and_returns_nothing(net):
    x = net.state("x", 3)
    net.loss(hs.sum_squares(x) + hs.sum_squares(net.vars["W"] @ net.vars["u"]))
    before = snapshot(net)
    result = "untouched"
    with pytest.raises(hs.DeclarationError):
        result = hs.derive(net)
    assert result == "untouched"
    assert snapshot(net) == before
    net.dynamics(x, -x + hs.tanh(net.vars["W"] @ net.vars["u"]))     # fix it: now it derives
    s = hs.derive(net)
    assert {eq.lhs.name for eq in s.equations} == {"x", "W1", "W", "b", "p_x", "p_W1", "p_W", "p_b"}


def test_failed_instant_does_not_register_its_name(net):
    W, u = net.vars["W"], net.vars["u"]
    other = hs.Network("other").weight("V", (3, 4))
    before = snapshot(net)
    with pytest.raises(hs.DeclarationError):
        net.instant("h", hs.tanh(other @ u))                 # undeclared operand
    with pytest.raises(hs.ShapeError):
        net.instant("h", hs.sum_squares(W @ u))              # a scalar
    assert snapshot(net) == before
    h = net.instant("h", hs.tanh(W @ u))                      # the good one goes through
    assert net.vars["h"] is h and net.instants["h"] == hs.tanh(W @ u)


def test_failed_declarations_do_not_register_their_names(net):
    before = snapshot(net)
    with pytest.raises(hs.DeclarationError):
        net.weight("Q", (0, 3))
    with pytest.raises(hs.DeclarationError):
        net.param("tau", "slow")
    with pytest.raises(hs.DeclarationError):
        net.state("x", -3)
    assert snapshot(net) == before
    net.weight("Q", (2, 3))
    net.param("tau", 2.0)
    x = net.state("x", 3)
    assert net.defaults["tau"] == 2.0 and net.vars["Q"].shape == (2, 3)

    with pytest.raises(hs.ShapeError):
        net.dynamics(x, -net.vars["b"])                       # wrong shape
    assert "x" not in net.dynamics_of
    net.dynamics(x, -x)

    W, u = net.vars["W"], net.vars["u"]
    with pytest.raises(hs.ShapeError):
        net.loss(W @ u)                                      # not a scalar
    with pytest.raises(hs.DeclarationError):
        net.loss(hs.softmax_cross_entropy(W @ u, W @ u))     # target not data
    assert net.loss_expr is None
    net.loss(hs.sum_squares(W @ u))
    hs.derive(net)


def test_error_messages_are_one_line_and_name_no_internals(net):
    """Report in the user's terms: no hamsym class names or Python reprs of nodes."""
    W1, u = net.vars["W1"], net.vars["u"]
    with pytest.raises(hs.ShapeError) as err:
        W1 @ u
    assert not re.search(r"<(Var|MatMul|Add)|object at 0x", str(err.value))
