"""Every block of README.md runs as written.

The ```python and ```bash blocks (indented ones in lists too) are run in document
order in one fresh temporary folder holding a copy of examples/specs/: the python
blocks in one namespace, as one reader would paste them into one session; of the
bash blocks, the `hamsym ...` lines through the command line (python -m hamsym) and
the `python -c ...` lines, in the same folder. A bash line that is neither is run
only if it is listed below with the reason it cannot run here (installing, the whole
test suite, several MPI ranks or machines); any other line fails the test, naming
its line of README.md, so nothing is skipped silently. Everything runs in one child
process (tests/readme_driver.py), away from this test session's modules.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: bash lines of the README that a test cannot run, and why
NOT_RUN = {
    'pip install -e ".[test]"': "installs hamsym: the test runs in the installed one",
    "python -m pytest": "the whole test suite, of which this test is a part",
    'pip install -e ".[mpi]"': "installs the MPI extra (the test extra has it)",
    "mpiexec -n 8 python examples/distributed.py": "8 MPI ranks of 512-wide layers; "
    "tests/test_distributed.py runs MPI jobs of small networks",
    "cat > hosts <<EOF\nnode1:2\nnode2:2\nnode3:2\nnode4:2\nEOF": "a host file for machines "
    "this test does not have",
    "mpiexec -f hosts -n 8 python examples/distributed.py": "four machines",
    "mpiexec -f hosts -n 8 python examples/distributed.py --restore": "four machines",
}


def blocks(text):
    """[(language, code, line number of its first line)] of the fenced python and bash
    blocks, in order; a block indented in a list is dedented."""
    out = []
    for m in re.finditer(r"^( *)```(python|bash)\n(.*?)^\1```", text, re.S | re.M):
        indent = len(m.group(1))
        code = "\n".join(line[indent:] for line in m.group(3).splitlines())
        out.append((m.group(2), code + "\n", text[:m.start()].count("\n") + 2))
    return out


def commands(code, first_line):
    """[(command text, line number)] of a bash block: comments and blank lines dropped,
    a here-document kept whole with its command."""
    lines, out, k = code.splitlines(), [], 0
    while k < len(lines):
        line, number = lines[k], first_line + k
        k += 1
        words = shlex.split(line, comments=True)
        if not words:
            continue
        text = shlex.join(words) if "<<" not in line else line.strip()
        if "<<" in line:                        # cat > file <<EOF ... EOF
            end = line.split("<<")[1].strip()
            while k < len(lines):
                text += "\n" + lines[k]
                k += 1
                if lines[k - 1].strip() == end:
                    break
        out.append((text, words, number))
    return out


def steps():
    """What the driver runs: ("python", code, line), ("command", argv, line)."""
    plan, refused = [], []
    for language, code, line in blocks(README.read_text()):
        if language == "python":
            plan.append(("python", code, line))
            continue
        for text, words, number in commands(code, line):
            if words[0] == "hamsym":
                plan.append(("command", [sys.executable, "-m", "hamsym", *words[1:]], number))
            elif words[:2] == ["python", "-c"]:
                plan.append(("command", [sys.executable, *words[1:]], number))
            elif text in NOT_RUN or any(shlex.split(key) == words for key in NOT_RUN
                                        if "<<" not in key):
                continue
            else:
                refused.append(f"README.md, line {number}: {text!r}")
    return plan, refused


def test_every_line_is_run_or_said_why_not():
    plan, refused = steps()
    assert not refused, ("these lines cannot run as written; fix the README, or list them "
                         "in NOT_RUN with the reason:\n" + "\n".join(refused))
    text = README.read_text()
    for line in NOT_RUN:                             # the list does not outlive the README
        assert line in text, f"NOT_RUN lists {line!r}, which README.md no longer has"
    languages = [language for language, _, _ in blocks(text)]
    assert languages.count("python") >= 7 and languages.count("bash") >= 6
    assert sum(kind == "command" for kind, _, _ in plan) >= 13


def test_the_readme_runs_as_written(tmp_path):
    plan, _ = steps()
    shutil.copytree(ROOT / "examples" / "specs", tmp_path / "examples" / "specs")
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("readme_driver.py")),
                           str(tmp_path / "plan.json")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=1500, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    done = [line for line in proc.stdout.splitlines() if line.startswith("README.md, line ")]
    assert len(done) == len(plan)
    # what the blocks say they make is there
    for made in ("run1/checkpoint.npz", "run1/record.npz", "preds.csv", "delay1/checkpoint.npz",
                 "delay1/losses.png", "generated/readme_mlp.py",
                 "generated/mlp.py", "ck.npz", "ens.npz", "ckpt.rank0.npz"):
        assert (tmp_path / made).is_file(), made


def _env():
    import os
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("NUMBA_BOUNDSCHECK", None)       # the README's reader runs without it
    return env
