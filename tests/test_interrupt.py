"""Ctrl-C during run() or run_stream() stops between two steps, soon, and says how
many steps were applied: the weights equal an uninterrupted run of that many steps."""

import signal
import subprocess
import sys
import textwrap
import time

import hamsym as hs
from hamsym.declare.zoo import mlp

_CHILD = textwrap.dedent("""
    import importlib.util, sys, time
    import numpy as np
    spec = importlib.util.spec_from_file_location("interrupted", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["interrupted"] = mod
    spec.loader.exec_module(mod)
    T = 2_000_000
    rng = np.random.default_rng(0)
    U, Y = rng.normal(size=(T, 3)), rng.normal(size=(T, 2))
    mod.Integrator().run(U[:2], Y[:2])                 # compile before the clock starts
    for how in ("run", "run_stream"):
        learner = mod.Integrator(seed=0)
        said = []

        def ready(*_):
            if not said:
                said.append(print("ready", flush=True))
        try:
            if how == "run":
                ready()
                learner.run(U, Y)
            else:   # ready once a chunk was applied: a loaded machine may read slowly
                learner.run_stream(zip(U, Y), chunk=10_000, on_chunk=ready)
            print("not interrupted", flush=True)
            sys.exit(1)
        except mod.Interrupted as exc:
            stopped = time.perf_counter()
            steps = exc.steps
            assert learner.step_count == steps and 0 < steps < T, steps
            assert how == "run_stream" or len(exc.losses) == steps
            again = mod.Integrator(seed=0)
            losses = again.run(U[:steps], Y[:steps])
            same = all(np.array_equal(a, again.weights[n]) for n, a in learner.weights.items())
            same &= how == "run_stream" or np.array_equal(losses, exc.losses)
            print(how, steps, "equal" if same else "DIFFERENT", stopped, flush=True)
""")


def test_ctrl_c_stops_at_a_step_boundary(tmp_path):
    # wide enough that 2,000,000 steps take seconds, not a fraction of the sleep below
    path = hs.generate(hs.derive(mlp([3, 64, 64, 2], name="interrupted"), theta=0.1, beta=0.1),
                       tmp_path / "interrupted.py")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for _ in range(2):
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.5 if not lines else 1.0)
            sent = time.perf_counter()
            child.send_signal(signal.SIGINT)
            lines.append(child.stdout.readline().split())
            assert len(lines[-1]) == 4, (lines, child.stderr.read() if child.poll() is not None else "")
            print(lines[-1][:3], "stopped", float(lines[-1][3]) - sent, "s after Ctrl-C")
        assert child.wait(timeout=120) == 0, child.stderr.read()
    finally:
        child.kill()
    assert [line[0] for line in lines] == ["run", "run_stream"]
    assert all(line[2] == "equal" for line in lines), lines
