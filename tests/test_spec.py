"""Spec files: every zoo network written in TOML derives the same equations as its Python
declaration, and malicious or malformed expression strings are refused without running."""

import builtins
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

import hamsym as hs
from hamsym import zoo
from hamsym.workbench.spec import SpecError, load_spec, loads_spec, parse_activation

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"

ZOO = {
    "mlp": lambda: zoo.mlp([4, 16, 2]),
    "mlp_classifier": lambda: zoo.mlp([4, 8, 3], activations=hs.relu, loss="cross_entropy",
                                      name="classifier"),
    "delay": lambda: zoo.delay_network([3, 8, 8, 2]),
    "rnn": lambda: zoo.recurrent(2, 8, 1),
    "ctrnn": lambda: zoo.recurrent(2, 8, 1, kind="continuous", tau=2.0),
    "oscillators": lambda: zoo.oscillator_bank(8, loss="mse"),
}


def test_every_spec_file_is_checked():
    assert sorted(p.stem for p in SPECS.glob("*.toml")) == sorted(ZOO)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_spec_derives_what_the_python_declaration_derives(name):
    spec = load_spec(SPECS / f"{name}.toml")
    ours, theirs = spec.derive(), hs.derive(ZOO[name](), **spec.hyper)
    assert str(ours) == str(theirs)
    assert ours.sympy() == theirs.sympy()
    assert spec.network.defaults == ZOO[name]().defaults


def test_generated_module_is_byte_identical(tmp_path):
    spec = load_spec(SPECS / "delay.toml")
    a = hs.render(spec.derive(), **spec.module)
    b = hs.render(hs.derive(zoo.delay_network([3, 8, 8, 2]), **spec.hyper), **spec.module)
    assert a == b


MINIMAL = """
name = "n"
loss = {loss!r}
[inputs]
u = 3
[targets]
y = 2
[weights]
W = [2, 3]
b = 2
"""


def spec_with_loss(loss):
    return loads_spec(MINIMAL.replace("{loss!r}", json.dumps(loss)), source="bad.toml")


def test_operators_match_python():
    net = hs.Network("n")
    u, y = net.input("u", 3), net.target("y", 2)
    W, b = net.weight("W", (2, 3)), net.weight("b", 2)
    net.loss(hs.sum_squares(-(W @ u) * 2 + b / 3 - y) * 0.5 + hs.dot(b, b) + hs.total(W.T @ y)
             + hs.sum_squares(b * b * b))
    spec = spec_with_loss("sum_squares(-(W @ u) * 2 + b / 3 - y) * 0.5 + dot(b, b) "
                          "+ total(W.T @ y) + sum_squares(b ** 3)")
    assert str(spec.network.loss_expr) == str(net.loss_expr)
    assert spec.network.loss_expr == net.loss_expr


def test_number_arithmetic_is_folded_within_bounds():
    spec = spec_with_loss("sum_squares(W @ u - y) * (2 ** 3 / 4 - 1)")
    assert spec.network.loss_expr == hs.sum_squares(spec.network.vars["W"] @ spec.network.vars["u"]
                                                    - spec.network.vars["y"]) * 1.0


def test_custom_activation_and_params():
    spec = loads_spec("""
name = "n"
loss = "sum_squares(x - y) / 2 + lam * sum_squares(W)"
[activations]
softsign = "t / (1 + abs(t))"
[inputs]
u = 3
[targets]
y = 2
[weights]
W = [2, 3]
[states]
x = 2
[params]
lam = 0.01
[dynamics]
x = "(softsign(W @ u) - x) / delta"
""")
    t = sympy.Symbol("t", real=True)
    assert spec.network.defaults == {"lam": 0.01}
    from hamsym.declare.expr import Apply
    from hamsym.declare.rewrite import walk
    act, = {n.activation for n in walk(spec.network.dynamics_of["x"]) if isinstance(n, Apply)}
    assert act.name == "softsign" and act.expr == t / (1 + sympy.Abs(t))
    system = spec.derive()
    assert "softsign'" in str(system)


def test_activation_whitelist_builds_sympy():
    t = sympy.Symbol("t", real=True)
    assert parse_activation("log(1 + exp(-t)) * 2 - t ** 2") == \
        sympy.log(1 + sympy.exp(-t)) * 2 - t ** 2
    with pytest.raises(SpecError, match="unknown function `eval`"):
        parse_activation("eval(t)")
    with pytest.raises(SpecError, match="unknown name"):
        parse_activation("x")


# -- refusals ---------------------------------------------------------------------------------

MALICIOUS = [
    ("__import__('os').system('touch SENTINEL')", "only calls of known functions by name"),
    ("__import__('os')", "unknown function `__import__`"),
    ("open('SENTINEL', 'w')", "unknown function `open`"),
    ("eval('1')", "unknown function `eval`"),
    ("W.__class__", r"attribute `.__class__` is not allowed"),
    ("sum_squares(W.T.T.shape)", r"attribute `.shape`"),
    ("(lambda: 0)()", "only calls of known functions"),
    ("lambda x: x", "lambdas are not allowed"),
    ("sum_squares([w for w in W])", "comprehensions are not allowed"),
    ("sum_squares(x for x in W)", "generators are not allowed"),
    ("W[0]", "subscripts"),
    ("f'{W}'", "f-strings are not allowed"),
    ("(z := W)", r"assignment expressions \(:=\) are not allowed"),
    ("2 ** 10 ** 10", "exponent of \\*\\* must be an integer literal"),
    ("sum_squares(W) ** 100000000", "exponent of \\*\\* must be an integer literal"),
    ("sum_squares(W) ** 0.5", "exponent of \\*\\* must be an integer literal"),
    ("9" * 30, "out of range"),
    ("1e400 * sum_squares(W)", "out of range"),
    ("sum_squares(V)", "unknown name `V`"),
    ("sum_squares(x=W)", "keyword arguments are not allowed"),
    ("sum_squares(*W)", "starred arguments are not allowed"),
    ("sum_squares(W) and 1", "and/or are not allowed"),
    ("sum_squares(W) < 1", "comparisons are not allowed"),
    ("'sum_squares(W)'", "str constant"),
    ("b'x'", "bytes constant"),
    ("True", "bool constant"),
    ("1j * sum_squares(W)", "complex constant"),
    ("sum_squares(" + "tanh(" * 100 + "W" + ")" * 101, "nested deeper"),
    ("(" * 300 + "sum_squares(W)" + ")" * 300, "not an expression: too many nested"),
    ("-" * 100 + "sum_squares(W)", "nested deeper"),
    ("sum_squares(W) if 1 else 0", "conditional expressions are not allowed"),
    ("sum_squares(W); import os", "not an expression"),
    ("sum_squares(W) % 2", "operator Mod is not allowed"),
    ("sum_squares(W) // 2", "operator FloorDiv is not allowed"),
    ("tanh", "is a function: call it"),
    ("sum_squares(W, W)", "sum_squares takes 1 argument, got 2"),
    ("sum_squares(W @ y)", "cannot multiply"),
    ("1 / 0 * sum_squares(W)", "division by zero"),
    ("2 @ sum_squares(W)", "@ needs matrices or vectors"),
    ("[W]", "lists are not allowed"),
    ("{W: 1}", "dicts are not allowed"),
    ("sum_squares(W) + " * 500 + "1", "characters"),
    ("", "empty expression"),
    ("sum_squares(" + "(" * 30 + "b" + " ** 8)" * 30 + ")", "too large"),
]


@pytest.mark.parametrize("text, message", MALICIOUS)
def test_malicious_and_malformed_expressions_are_refused(text, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = []
    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, lambda *a, _name=name, **k: ran.append(_name))
    monkeypatch.setattr(os, "system", lambda *a, **k: ran.append("os.system"))
    spec_file = tmp_path / "bad.toml"
    spec_file.write_text(MINIMAL.replace("{loss!r}", json.dumps(text)))
    with pytest.raises(SpecError) as err:
        load_spec(spec_file)
    msg = str(err.value)
    assert "bad.toml" in msg and "loss" in msg, msg
    assert re.search(message, msg), msg
    assert ran == []
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]        # nothing written


def test_columns_count_in_the_original_string():
    with pytest.raises(SpecError, match=r"bad.toml: loss, column 16: unknown name `V`"):
        spec_with_loss("   sum_squares(V)")


def test_errors_name_file_key_and_column(tmp_path):
    f = tmp_path / "net.toml"
    f.write_text(MINIMAL.replace("{loss!r}", '"sum_squares(W @ u - y)"').replace(
        "[weights]", '[instants]\nh = "tanh(W @ u + bb)"\n[weights]').replace(
        '[instants]\nh = "tanh(W @ u + bb)"\n[weights]\nW = [2, 3]\nb = 2',
        '[weights]\nW = [2, 3]\nb = 2\n[instants]\nh = "tanh(W @ u + bb)"'))
    with pytest.raises(SpecError, match=r"net.toml: \[instants\] h, column 14: unknown name `bb`"):
        load_spec(f)


@pytest.mark.parametrize("patch, message", [
    (("[weights]\nW = [2, 3]", "[weights]\nW = [2, 0]"), r"\[weights\] W: .*positive int"),
    (("[weights]\nW = [2, 3]", "[weights]\nW = \"big\""), r"\[weights\] W"),
    (("[targets]", "[colors]\nred = 1\n[targets]"), "colors: unknown key"),
    (("b = 2", "b = 2\n[hyper]\nlr = 0.1"), r"\[hyper\] lr: unknown hyperparameter"),
    (("b = 2", "b = 2\n[hyper]\nflip = 3"), r"\[hyper\].*flip must be"),
    (("b = 2", "b = 2\n[module]\nscheme = \"fast\""), r"\[module\] scheme: expected one of"),
    (("b = 2", "b = 2\n[module]\ngroups = \"x\""), r"\[module\] groups"),
    (("b = 2", "b = 2\n[states]\nx = 2"), r"\[dynamics\].*state 'x' has no dynamics"),
    (("b = 2", "b = 2\n[dynamics]\nb = \"b\""), r"\[dynamics\] b: `b` is not declared in \[states\]"),
    (("b = 2", "b = 2\n[params]\ntanh = 1.0"), r"\[params\] tanh: .*name of a function"),
    (("b = 2", "b = 2\n[init]\nweights = 3"), r"\[init\] weights"),
    (("u = 3", "u = 3\ndelta = 1"), "delta.*reserved"),
])
def test_bad_declarations_name_the_key(patch, message):
    text = MINIMAL.replace("{loss!r}", '"sum_squares(W @ u + b - y)"').replace(*patch)
    with pytest.raises(SpecError, match=message):
        loads_spec(text, source="bad.toml")


def test_missing_loss_and_bad_toml():
    with pytest.raises(SpecError, match="loss: missing"):
        loads_spec("[inputs]\nu = 1\n", source="x.toml")
    with pytest.raises(SpecError, match="x.toml: not valid TOML"):
        loads_spec("loss = ", source="x.toml")
    with pytest.raises(SpecError, match="spec file /nonexistent/x.toml: no such file"):
        load_spec("/nonexistent/x.toml")


def test_init_table_starts_the_integrator(load):
    from hamsym.workbench.spec import integrator
    spec = load_spec(SPECS / "oscillators.toml")
    mod = load(spec.derive(), name="spec_oscillators", **spec.module)
    bank = integrator(spec, mod)
    np.testing.assert_allclose(bank.weights["w"], 2 * np.pi * np.linspace(0.02, 0.14, 8), rtol=1e-12)
    assert (bank.states["a"] == 1).all() and (bank.weights["Ca"] == 0).all()


def test_init_table_errors_name_the_key(load):
    from hamsym.workbench.spec import integrator
    text = (SPECS / "oscillators.toml").read_text()
    mod = load(load_spec(SPECS / "oscillators.toml").derive(), name="spec_oscillators",
               scheme="local")
    for old, new, message in [("Ca = 0.0", "Ca = [1.0, 2.0]", r"\[init.weights\] Ca: 2 values"),
                              ("Ca = 0.0", "Ca = 0.0\nC = 1.0", r"\[init.weights\] C: not one of")]:
        spec = loads_spec(text.replace(old, new), source="osc.toml")
        with pytest.raises(SpecError, match="osc.toml: " + message):
            integrator(spec, mod)
