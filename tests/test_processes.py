"""The local scheme's per-layer kernels, run in separate processes over shared
memory (examples/processes.py), give exactly the single-process result: the
kernels exchange only published state vectors and messages."""

import importlib
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_layers_in_separate_processes_match_one_process(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))    # spawned processes import it by name
    example = importlib.import_module("processes")
    gap, moved = example.main(steps=120, out_dir=tmp_path)
    assert moved > 1e-3            # the weights did learn
    assert gap == 0.0              # and identically, bit for bit
