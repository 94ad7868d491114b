"""`hamsym sweep --shard i/N` and `hamsym sweep-merge`: three shards joined give the
table and curves of the unsharded sweep byte for byte (a learner's steps do not depend
on the others of its ensemble) and hs.sweep's table; incomplete or mismatched shards
are refused, naming the shard."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import hamsym

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
GRID = ("--grid", "beta=0.5,2", "--grid", "theta=0.1,0.4", "--seeds", "3-4", "--window", "50",
        "--chunk", "400")




def test_three_shards_merge_into_the_single_machine_table(tmp_path, monkeypatch, capsys):
    import hamsym as hs
    from hamsym.workbench import cli, sweep_runner
    from hamsym.workbench.spec import load_spec
    work = tmp_path
    shutil.copy(SPECS / "mlp.toml", work / "mlp.toml")
    rng = np.random.default_rng(1)
    U = rng.normal(size=(900, 4))
    Y = np.tanh(U[:, :2])
    np.save(work / "s.npy", np.hstack([U, Y]))

    hamsym("sweep", "mlp.toml", "--stream", "s.npy", *GRID, "-o", "one", cwd=work)
    for i in range(3):
        out = hamsym("sweep", "mlp.toml", "--stream", "s.npy", *GRID, "-o", "many",
                     "--shard", f"{i}/3", cwd=work).stdout
        assert f"shard {i}/3" in out
    assert "best: beta = " in hamsym("sweep-merge", "many", cwd=work).stdout
    one, many = work / "one", work / "many"
    assert (many / "sweep.csv").read_bytes() == (one / "sweep.csv").read_bytes()
    np.testing.assert_array_equal(np.load(many / "curves.npy"), np.load(one / "curves.npy"))

    # and the table of hs.sweep on the stream in memory (mean losses summed by chunks)
    got = np.genfromtxt(many / "sweep.csv", delimiter=",", names=True, dtype=None,
                        encoding="utf-8")
    mod = load_spec(work / "mlp.toml").load(one / "mlp.py")
    want = hs.sweep(mod, {"beta": [0.5, 2], "theta": [0.1, 0.4]}, (U, Y), seeds=[3, 4],
                    window=50, frame=False)
    assert got.dtype.names == want.dtype.names and len(got) == 8
    for name in ("beta", "theta", "seed", "final_loss", "diverged"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    np.testing.assert_allclose(got["mean_loss"], want["mean_loss"], rtol=1e-12)
    merged = (many / "sweep.csv").read_bytes()

    # refused, naming the shard, writing nothing
    (many / "shard-1-of-3").rename(work / "aside")
    bad = hamsym("sweep-merge", "many", cwd=work, ok=False)
    assert bad.returncode == 2 and "shard 1/3 is missing" in bad.stderr, bad.stderr
    (work / "aside").rename(many / "shard-1-of-3")
    np.save(work / "other.npy", np.hstack([U, Y])[::-1])
    hamsym("sweep", "mlp.toml", "--stream", "other.npy", *GRID, "-o", "many", "--shard", "2/3",
           cwd=work)
    bad = hamsym("sweep-merge", "many", cwd=work, ok=False)
    assert "shard 2/3 (many/shard-2-of-3) is not of the same sweep as shard 0/3: another " \
           "stream" in bad.stderr, bad.stderr
    (work / "mlp.toml").write_text((work / "mlp.toml").read_text() + "# edited\n")
    hamsym("sweep", "mlp.toml", "--stream", "s.npy", *GRID, "-o", "many", "--shard", "2/3",
           cwd=work)
    bad = hamsym("sweep-merge", "many", cwd=work, ok=False)
    assert "shard 2/3 (many/shard-2-of-3) is not of the same sweep as shard 0/3: another " \
           "spec file" in bad.stderr, bad.stderr

    def stream(*args, **kwargs):                    # Ctrl-C after two chunks
        yield U[:100], Y[:100]
        yield U[100:200], Y[100:200]
        raise KeyboardInterrupt
    monkeypatch.setattr(sweep_runner, "open_stream", stream)
    monkeypatch.chdir(work)
    assert cli.main(["sweep", "mlp.toml", "--stream", "s.npy", *GRID, "-o", "many",
                     "--shard", "0/3"]) == 130
    assert cli.main(["sweep-merge", "many"]) == 2
    assert "shard 0/3 (many/shard-0-of-3) was interrupted after 200 rows of the stream: run " \
           "it again" in capsys.readouterr().err
    assert (many / "sweep.csv").read_bytes() == merged

    for shard, message in (("3/3", "expected i/N with 0 <= i < N"),
                           ("0/9", "the grid has 8 rows, so at most 8 shards")):
        bad = hamsym("sweep", "mlp.toml", "--stream", "s.npy", *GRID, "-o", "late", "--shard",
                     shard, cwd=work, ok=False)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert not (work / "late").exists()


@pytest.mark.fast
def test_shards_split_the_rows_in_order():
    from hamsym.workbench.shards import StreamDigest, parse_shard, shard_rows
    for total in (1, 7, 8, 100):
        for n in range(1, min(total, 9) + 1):
            rows = [r for i in range(n) for r in shard_rows(total, i, n)]
            assert rows == list(range(total))               # each row once, in order
            sizes = [len(shard_rows(total, i, n)) for i in range(n)]
            assert max(sizes) - min(sizes) <= 1
    assert parse_shard(" 2 / 5") == (2, 5)
    a, b = StreamDigest(), StreamDigest()
    x = np.arange(60.0).reshape(20, 3)
    list(a.feed([(x[:7, :2], x[:7, 2:]), (x[7:, :2], x[7:, 2:])]))
    list(b.feed([(x[:, :2], x[:, 2:])]))
    assert a.hexdigest() == b.hexdigest() and a.rows == 20     # the same however cut


@pytest.mark.fast
def test_workbench_doc_commands_parse():
    """Every `hamsym` line of docs/workbench.md (the Slurm script's included) parses with
    the real parser."""
    import re
    import shlex

    from hamsym.workbench.cli import parser
    text = (SPECS.parent.parent / "docs" / "workbench.md").read_text()
    lines = [shlex.split(line, comments=True) for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.replace("\\\n", " ").splitlines()]
    commands = [words for words in lines if words and words[0] == "hamsym"]
    assert any("sweep-merge" in words for words in commands)
    assert any("--shard" in words for words in commands)
    for words in commands:
        parser().parse_args(words[1:])
