"""The paper's showcases (examples/showcase_*.py) in their quick form, each asserting
its qualitative result. Figures go to a temporary folder."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def showcase(name):
    spec = importlib.util.spec_from_file_location(f"showcase_{name}", EXAMPLES / f"showcase_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_hl_is_sgd_with_momentum(tmp_path):
    rows = showcase("sgd").main(quick=True, out_dir=tmp_path)
    for scheme in ("nonlocal", "local"):        # local: the momentum update one step late
        assert rows[scheme]["loss_gap"] < 1e-12 and rows[scheme]["weight_gap"] < 1e-12, rows[scheme]
        assert rows[scheme]["last"] < rows[scheme]["first"] / 5


def test_b_hl_next_to_torch_optimizers(tmp_path):
    out = showcase("optimizers").main(quick=True, out_dir=tmp_path)
    assert out["gap"] < 1e-12
    for name, (first, last) in out["table"].items():
        assert last < first / 3, (name, first, last)


def test_c_schemes_on_a_deep_delay_network(tmp_path, monkeypatch):
    from hamsym.workbench import plot
    figures, real = [], plot.losses

    def keep(*args, **kwargs):                          # the figure the showcase draws
        figures.append(real(*args, **kwargs))
        return figures[-1]
    monkeypatch.setattr(plot, "losses", keep)
    out = showcase("schemes").main(quick=True, out_dir=tmp_path)
    table = out["table"]
    for name, (first, last) in table.items():
        assert last < first / 2, (name, first, last)
    assert table["nonlocal"][1] < table["local"][1]     # the non-local sweep learns faster
    # the axes in steps (one value per held input, at its last step), the title by what is drawn
    [ax] = figures[0].axes
    assert ax.get_xlabel() == "step" and ax.get_title() == \
        "5-layer delay network: nonlocal, local (2 schedules)"
    n = len(out["curves"]["local"])
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), 31 + 32 * np.arange(n))
    assert (tmp_path / "showcase_schemes.png").is_file()


def test_the_schemes_example_writes_into_its_folder(tmp_path):
    """examples/schemes.py: modules and figure into the folder given, nothing elsewhere."""
    import os
    import subprocess
    import sys
    (tmp_path / "cwd").mkdir()
    proc = subprocess.run([sys.executable, str(EXAMPLES / "schemes.py"), str(tmp_path / "out")],
                          cwd=tmp_path / "cwd", capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HAMSYM_QUICK": "1"})
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "cwd").iterdir()) == []
    assert (tmp_path / "out" / "schemes.png").is_file()
    assert f"saved {tmp_path / 'out' / 'schemes.png'}" in proc.stdout


def test_d_memory_does_not_grow_with_the_stream(tmp_path):
    rows = showcase("memory").main(quick=True, out_dir=tmp_path)
    (t0, hl0, bp0), (t1, hl1, bp1) = rows[0], rows[-1]
    assert t1 == 100 * t0
    assert hl1 < 2 * hl0                                # flat for HL
    assert bp1 > 50 * bp0                               # linear for BPTT


def test_e_oscillators_generate_the_signals(tmp_path):
    results = showcase("oscillators").main(quick=True, out_dir=tmp_path)
    for name, r in results.items():
        assert r["mse"] < 0.2, (name, r["mse"])
    learned = results["two sines"]["bank"].weights["w"] / (2 * np.pi)
    assert np.abs(learned[:, None] - [0.045, 0.078]).min(axis=0).max() < 1e-3
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "showcase_oscillators_sine.png", "showcase_oscillators_square.png",
        "showcase_oscillators_two_sines.png"]
