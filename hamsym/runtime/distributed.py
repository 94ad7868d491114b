"""One learner whose units run on the ranks of an MPI job.

Each rank keeps only its own units' arrays and runs their emit/update kernels in the
module's rank loop, a compiled loop that exchanges published states and messages with
non-blocking MPI calls (runtime.exchange). mpi4py and numba_mpi are imported on first
use only: without MPI a module needs numpy, numba and scipy alone.
"""

import atexit
import contextlib
import hashlib
import json
import os
import sys
import time
import types

import numba
import numpy as np

from . import checkpoint, checks, exchange, feed, per_weight
from .learner import Integrator


class RankFailure(RuntimeError):
    """A rank stopped answering within the timeout (it died, hangs, or its link is down).

    .rank is the rank that stopped, as far as this rank can tell: the one it waited for,
    or, when that one was itself waiting, the one at the end of that chain."""

    def __init__(self, message, rank):
        super().__init__(message)
        self.rank = rank


_FAILED = []
_REFUSED = -1                                 # the chunk length that says: rank 0 refused
_NO_CTRL_C = types.SimpleNamespace(pressed=False)


def _exit_without_finalize():
    # after a rank failure MPI_Finalize would wait for the rank that stopped
    if _FAILED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def build(t, integrator, subclass):
    """The module's DistributedIntegrator: a subclass of the module's Integrator, or a
    class that refuses with the reason when the scheme cannot run distributed."""
    if t.distributed_reason is not None:
        return subclass(NotDistributable, "DistributedIntegrator",
                        REASON=t.distributed_reason)
    # a subclass of both, so that it is an instance of the module's Integrator
    return type("DistributedIntegrator", (DistributedIntegrator, integrator),
                {"__module__": t.module, "__qualname__": "DistributedIntegrator",
                 "__doc__": DistributedIntegrator.__doc__})


class NotDistributable:
    """Not available for this scheme (see REASON)."""

    REASON = ""

    def __init__(self, *args, **kwargs):
        raise ValueError(self.REASON)


def _rank_loop(t):
    """The module's rank loop, compiled on first use with the exchange's functions as
    its globals."""
    if getattr(t, "_rank_loop", None) is None:
        source = t.rank_loop
        scope = {**t.namespace, **exchange.helpers(len(t.channels))}
        t._rank_loop = numba.njit(nogil=True)(types.FunctionType(
            source.__code__, scope, source.__name__, source.__defaults__, source.__closure__))
    return t._rank_loop


class DistributedIntegrator(Integrator):
    """One learner whose units run on the ranks of an MPI job (mpiexec -n N python ...).

    DistributedIntegrator(ranks=None, seed=0, weights=None, states=None, dtype=DTYPE,
    timeout=60.0, chunk=1024, **hyper), called on every rank with the same arguments.
    ranks={state name: rank} places each unit (all states of a unit on one rank);
    None spreads the units evenly in order. Weights are drawn from the seed exactly as
    Integrator draws them, so a run gives bit for bit the weights, states and costates
    of Integrator(seed=...) with the same data. Each rank holds only its own units'
    arrays in .weights, .states, .costates; gather() collects them on rank 0.

    The streams come from rank 0 (the other ranks pass None): every chunk of an input or
    target goes to the ranks whose units read it; the losses are summed once per chunk
    and returned on every rank. A rank that waits more than `timeout` seconds for
    another raises RankFailure naming the rank that stopped (call it from mpiexec
    -disable-auto-cleanup for the others to report it; by default MPICH ends the whole
    job as soon as one rank exits).
    """

    # a rank holds only its own units' arrays: plain dicts of some of the declared names
    weights = property(lambda self: self._weights, lambda self, v: setattr(self, "_weights", v))
    states = property(lambda self: self._states, lambda self, v: setattr(self, "_states", v))
    costates = property(lambda self: self._costates,
                        lambda self, v: setattr(self, "_costates", v))

    def __init__(self, *, ranks=None, seed=0, weights=None, states=None, dtype=None,
                 timeout=60.0, chunk=1024, **hyper):
        t = self._t
        MPI, _ = exchange.mpi()
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout, self.chunk = float(timeout), int(chunk)
        self.dtype = checks.float_dtype(t.dtype if dtype is None else dtype)
        hyper = per_weight.expand(hyper, t)
        unknown = set(hyper) - set(t.known)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {t.known}")
        self.hyper = {**t.hyper, **t.params, **hyper}
        self.placement = placement(t, ranks, self.size)
        self.unit_rank = [self.placement[u["states"][0]] if u["states"] else 0
                          for u in t.units]
        mine = [u for u, r in zip(t.units, self.unit_rank) if r == self.rank]
        own_weights = {w for u in mine for w in u["weights"]}
        own_states = {x for u in mine for x in u["states"]}
        given_w, given_x = dict(weights or {}), dict(states or {})
        for kind, given, declared in (("weight", given_w, t.weights),
                                      ("state", given_x, t.states)):
            if set(given) - set(declared):
                raise KeyError(f"unknown {kind}(s) {sorted(set(given) - set(declared))}; "
                               f"declared: {list(declared)}")
        rng = np.random.default_rng(seed)
        self.weights, self.states = {}, {}
        for name, shape in t.weights.items():  # drawn in order on every rank: Integrator's
            value = self._given("weight", {name: shape}, {name: given_w[name]}
                                if name in given_w else None,
                                lambda n, s: checks.initial(s, rng, self.dtype))[name]
            if name in own_weights:
                self.weights[name] = value
        for name, shape in t.states.items():
            if name in own_states:
                self.states[name] = self._given(
                    "state", {name: shape}, {name: given_x[name]} if name in given_x else None,
                    lambda n, s: np.zeros(s, self.dtype))[name]
        self.costates = {name: np.zeros(shape, self.dtype)
                         for name, shape in t.costates.items()
                         if name in own_weights or name in own_states}
        self._warned = False
        self._owned = np.array([r == self.rank for r in self.unit_rank], np.uint8)
        self._src = np.array([self.unit_rank[c[1]] for c in t.channels] or [0], np.int64)
        self._dst = np.zeros((max(len(t.channels), 1), self.size), np.uint8)
        for i, (_, source, readers, _) in enumerate(t.channels):
            for reader in readers:
                if self.unit_rank[reader] != self.unit_rank[source]:
                    self._dst[i, self.unit_rank[reader]] = 1
        needed = {b for u in mine for b in u["buffers"]} | {
            c[0] for i, c in enumerate(t.channels) if self._src[i] == self.rank or
            self._dst[i, self.rank]}
        self.work = {name: np.zeros(shape if name in needed else (0,) * len(shape), self.dtype)
                     for name, shape in t.work.items()}
        self._data_ranks = {d: sorted({self.unit_rank[i] for i, u in enumerate(t.units)
                                       if d in u["data"]}) for d in t.data}
        self._streams = {d: np.zeros((self.chunk,) + (shape if self.rank in self._data_ranks[d]
                                                      else (0,) * len(shape)), self.dtype)
                         for d, shape in t.data.items()}
        self._unit_losses = np.zeros((self.chunk, len(t.units)), np.float64)
        self._tags = exchange.tags(len(t.channels))
        self.timing = np.zeros(2)             # seconds in kernels, waiting for other ranks
        self.steps = 0
        self._loop = _rank_loop(t)
        self._call(0)                         # compile now, before the timeouts count
        if not _FAILED_HOOK:
            atexit.register(_exit_without_finalize)
            _FAILED_HOOK.append(_exit_without_finalize)
        self._agree(seed)

    # -- arrays ------------------------------------------------------------------------
    def _array_args(self):
        empty = {}

        def get(table, name, shape):
            if name in table:
                return table[name]
            if name not in empty:
                empty[name] = np.zeros((0,) * len(shape), self.dtype)
            return empty[name]
        t = self._t
        return ([get(self.weights, n, s) for n, s in t.weights.items()] +
                [get(self.costates, n, s) for n, s in t.weights.items()] +
                [get(self.states, n, s) for n, s in t.states.items()] +
                [get(self.costates, n, s) for n, s in t.states.items()])

    def _call(self, n):
        report = np.full(2, -1, np.int64)
        status = self._loop(*self._array_args(), *(s[:n] for s in self._streams.values()),
                            *self._scalars(), *self.work.values(), self._unit_losses[:n],
                            self.rank, self._src, self._dst, self._owned, self.timeout,
                            self.timing, report)
        if status:
            self._fail(int(report[0]), f"at step {self.steps + int(report[1])}")

    def _fail(self, rank, where):
        _FAILED.append(rank)
        units = [u["name"] for u, r in zip(self._t.units, self.unit_rank) if r == rank]
        raise RankFailure(f"rank {self.rank}: rank {rank} (units {', '.join(units) or '-'}) "
                          f"stopped answering {where}; no answer within {self.timeout:g} s",
                          rank)

    # -- point to point with a deadline, outside the compiled loop ----------------------
    def _complete(self, requests, peers, where, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pending = list(zip(requests, peers))
        while pending:
            pending = [(r, p) for r, p in pending if not r.Test()]
            if pending and time.monotonic() > deadline:
                self._fail(pending[0][1], where)
            if pending:
                time.sleep(1e-4)

    def _agree(self, seed):
        """Every rank runs the same module, placement, dtype and hyperparameters."""
        hello = self._tags["hello"]
        mine = json.dumps([self._t.spec_hash, self.placement, str(self.dtype), self.hyper, seed,
                           self.chunk], sort_keys=True, default=str)
        digest = np.frombuffer(hashlib.sha256(mine.encode()).digest(), np.uint8).copy()
        wait = max(self.timeout, 600.0)        # the others may still be compiling
        if self.rank == 0:
            got = [np.empty_like(digest) for _ in range(self.size)]
            reqs = [self.comm.Irecv(got[r], r, hello) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), "at start-up", wait)
            bad = [r for r in range(1, self.size) if not np.array_equal(got[r], digest)]
            verdict = np.array([bad[0] if bad else -1], np.int64)
            reqs = [self.comm.Isend(verdict, r, hello) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), "at start-up", wait)
        else:
            verdict = np.empty(1, np.int64)
            self._complete([self.comm.Isend(digest, 0, hello)], [0], "at start-up", wait)
            self._complete([self.comm.Irecv(verdict, 0, hello)], [0], "at start-up", wait)
        if verdict[0] >= 0:
            raise ValueError(f"rank {int(verdict[0])} differs from rank 0 in the module "
                             "(SPEC_HASH), placement, dtype, hyperparameters, seed or chunk: "
                             "every rank must build the same DistributedIntegrator")

    # -- learning ----------------------------------------------------------------------
    def _chunk(self, parts):
        """One chunk: its length and data from rank 0, the steps, the losses summed.
        parts: rank 0's per-data arrays for this chunk (None when the stream ended)."""
        tags = self._tags
        n = np.array([0 if parts is None else len(parts[0]) if parts else 0], np.int64)
        where = f"before step {self.steps}"
        if self.rank == 0:
            reqs = [self.comm.Isend(n, r, tags["chunk"]) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), where)
        else:
            self._complete([self.comm.Irecv(n, 0, tags["chunk"])], [0], where)
        n = int(n[0])
        if n == _REFUSED:
            raise ValueError(f"rank {self.rank}: rank 0 refused the data of this call (its "
                             f"error names it); the {self.steps} steps before it stand")
        if n == 0:
            return None
        reqs, peers = [], []
        for i, (d, stream) in enumerate(self._streams.items()):
            if self.rank == 0:
                for r in self._data_ranks[d]:
                    if r == 0:
                        stream[:n] = parts[i]
                    else:
                        part = np.ascontiguousarray(parts[i])
                        reqs.append(self.comm.Isend(part, r, tags["data"] + i))
                        peers.append(r)
            elif self.rank in self._data_ranks[d]:
                reqs.append(self.comm.Irecv(stream[:n], 0, tags["data"] + i))
                peers.append(0)
        self._complete(reqs, peers, where)
        self._call(n)
        losses = self._unit_losses[:n]
        if self.rank == 0:
            got = [np.empty_like(losses) for _ in range(self.size)]
            reqs = [self.comm.Irecv(got[r], r, tags["loss"]) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), where)
            for r in range(1, self.size):          # each unit's loss comes from its own rank
                owned = [i for i, q in enumerate(self.unit_rank) if q == r]
                losses[:, owned] = got[r][:, owned]
            reqs = [self.comm.Isend(losses, r, tags["loss"]) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), where)
        else:
            self._complete([self.comm.Isend(losses, 0, tags["loss"])], [0], where)
            self._complete([self.comm.Irecv(losses, 0, tags["loss"])], [0], where)
        total = np.zeros(n)
        for i in range(len(self._t.units)):       # in unit order, as step() adds them
            total += losses[:, i]
        self.steps += n
        return total

    def run_stream(self, samples=None, *, on_chunk=None, record=None, every=None,
                   progress=None):
        """Learns from an iterable of per-step samples, given on rank 0 (None elsewhere).
        on_chunk(losses) is called on every rank after each chunk. Returns the step count.
        Recording and progress bars are not supported here (record= and progress=True
        are refused); on_chunk sees every loss. Samples are checked as
        Integrator.run_stream checks them (values that are not finite included): a bad
        one raises ValueError or TypeError on rank 0, naming it, and ValueError on the
        other ranks, after the samples before it were applied."""
        self._no_record(record, every, progress)
        self._check_frozen()
        names = self._t.data
        steps = 0
        if self.rank == 0:
            buffers = [np.empty((self.chunk,) + shape, self.dtype) for shape in names.values()]
            # samples checked as Integrator.run_stream checks them
            chunks = feed.chunks(samples, list(names.items()), buffers, self.chunk, _NO_CTRL_C,
                                 None, lambda: f"steps = {self.steps}", finite=True)
            while True:
                with self._refusing():
                    n = next(chunks, 0)
                if not n:
                    break
                losses = self._chunk([b[:n] for b in buffers])
                steps += n
                if on_chunk is not None:
                    on_chunk(losses)
            self._chunk(None)
        else:
            while (losses := self._chunk(None)) is not None:
                steps += len(losses)
                if on_chunk is not None:
                    on_chunk(losses)
        return steps

    def run(self, *streams, record=None, every=None, progress=None):
        """Steps over streams of shape (T, n) given on rank 0 (the other ranks call run()
        without them, or with anything: only rank 0's streams are read). Returns the T
        losses on every rank. record= and progress=True are refused (see run_stream).
        Streams rank 0 refuses (shape, length, values that are not finite) raise on
        every rank before any step."""
        self._no_record(record, every, progress)
        self._check_frozen()
        out = []
        if self.rank == 0:
            with self._refusing():
                data = self._data(streams, self._t.data, stream=True)
                total = data[0].shape[0] if data else 0
                if any(d.shape[0] != total for d in data):
                    raise ValueError("all streams must have the same length")
                checks.refuse_not_finite(data, list(self._t.data), escape=False)
            for start in range(0, total, self.chunk):
                out.append(self._chunk([d[start:start + self.chunk] for d in data]))
            self._chunk(None)
        else:
            while (losses := self._chunk(None)) is not None:
                out.append(losses)
        return np.concatenate(out) if out else np.zeros(0)

    @contextlib.contextmanager
    def _refusing(self):
        """On rank 0, around reading the data of a call: data it refuses (TypeError,
        ValueError) is refused on every rank, which would otherwise wait for a chunk
        that never comes."""
        try:
            yield
        except (TypeError, ValueError):
            n = np.array([_REFUSED], np.int64)
            reqs = [self.comm.Isend(n, r, self._tags["chunk"]) for r in range(1, self.size)]
            self._complete(reqs, range(1, self.size), f"before step {self.steps}")
            raise

    @staticmethod
    def _no_record(record, every, progress):
        # the compiled rank loop records nothing, and each rank holds only its own units
        if record is not None or every is not None:
            raise NotImplementedError(
                "DistributedIntegrator does not record: each rank holds only its own units' "
                "arrays; use on_chunk for the losses and gather() for the arrays")
        if progress not in (None, False):
            raise NotImplementedError("DistributedIntegrator has no progress bar: use "
                                      "on_chunk to report progress")

    def step(self, *data):
        """One step on one sample (given on rank 0); returns the loss on every rank."""
        return float(self.run(*(np.asarray(d)[None] for d in data))[0])

    def forward(self, *inputs):
        raise NotImplementedError("forward() reads every layer: use gather() and an Integrator")

    def predict(self, *streams, steps=None, keep_states=False):
        raise NotImplementedError("predict() reads every layer: use gather() and an Integrator")

    # -- the whole learner on rank 0, checkpoints ---------------------------------------
    def gather(self):
        """{"weights", "states", "costates"}: every rank's arrays, on rank 0 (None elsewhere)."""
        mine = {"weights": self.weights, "states": self.states, "costates": self.costates}
        everything = self.comm.gather(mine, root=0)
        if self.rank != 0:
            return None
        out = {k: {} for k in mine}
        for part in everything:
            for k in out:
                out[k].update(part[k])
        t = self._t
        order = {"weights": t.weights, "states": t.states, "costates": t.costates}
        return {k: {n: out[k][n] for n in order[k]} for k in out}

    def _file(self, prefix):
        return f"{prefix}.rank{self.rank}.npz"

    def save(self, prefix):
        """Writes this rank's arrays, step count, hyperparameters and the module's
        STRUCTURE to <prefix>.rank<r>.npz (each rank its own file, written whole or not
        at all); returns that path."""
        arrays = {**{f"weights.{n}": a for n, a in self.weights.items()},
                  **{f"states.{n}": a for n, a in self.states.items()},
                  **{f"costates.{n}": a for n, a in self.costates.items()}}
        meta = dict(steps=self.steps, rank=self.rank, size=self.size,
                    placement=self.placement, dtype=str(self.dtype), hyper=dict(self.hyper))
        return checkpoint.write(self._file(prefix), self._t, "rank", meta, arrays)

    def restore(self, prefix):
        """Reads what save(prefix) wrote for this rank: the run continues exactly where
        it stopped. The module's structure, number of ranks, placement and dtype must be
        the same. The whole file is checked before anything changes."""
        t = self._t
        path = self._file(prefix)
        meta, arrays = checkpoint.read(path, t, "rank")

        def same(want):
            def check(p, name, value):
                if value != want:
                    raise checkpoint.CheckpointError(
                        p, f"{name}: saved with {value!r}, this run has {want!r}")
                return value
            return check
        meta = checkpoint.fields(path, meta, {
            "steps": checkpoint.count, "rank": same(self.rank), "size": same(self.size),
            "placement": same(self.placement), "dtype": same(str(self.dtype)),
            "hyper": checkpoint.hyper_values(t.known)})
        mine = {"weights": {n: t.weights[n] for n in self.weights},
                "states": {n: t.states[n] for n in self.states},
                "costates": {n: t.costates[n] for n in self.costates}}
        found = checkpoint.arrays_of(path, arrays, mine, self.dtype)
        hyper = {name: checks.hyper(name, value, t.known)
                 for name, value in meta["hyper"].items()}
        # everything checked: now change the learner
        for kind in ("weights", "states", "costates"):
            for name, a in found[kind].items():
                getattr(self, kind)[name][...] = a
        self.steps = meta["steps"]
        self.hyper = hyper
        return self


_FAILED_HOOK = []


def placement(t, ranks, size):
    """{state name: rank} for every state, checked against the units and the job size."""
    units = [u["states"] for u in t.units if u["states"]] or [[]]
    if ranks is None:
        if size > len(units):
            raise ValueError(f"{size} MPI ranks but only {len(units)} unit(s) "
                             f"({', '.join(u['name'] for u in t.units)}): start at most "
                             f"{len(units)} ranks")
        return {x: k * size // len(units) for k, states in enumerate(units) for x in states}
    ranks = dict(ranks)
    unknown = set(ranks) - set(t.states)
    if unknown:
        raise KeyError(f"ranks: unknown state(s) {sorted(unknown)}; states: {list(t.states)}")
    missing = [x for x in t.states if x not in ranks]
    if missing:
        raise ValueError(f"ranks: no rank given for state(s) {missing}")
    for states in units:
        where = {ranks[x] for x in states}
        if len(where) > 1:
            raise ValueError(f"ranks: states {states} form one unit (they update together) "
                             f"and must be on one rank, not on ranks {sorted(where)}")
    bad = sorted({r for r in ranks.values() if not (isinstance(r, int) and 0 <= r < size)})
    if bad:
        raise ValueError(f"ranks: placement uses rank(s) {bad} but this job has {size} "
                         f"rank(s) (0..{size - 1}): start mpiexec with -n "
                         f"{max(r for r in ranks.values()) + 1}")
    idle = sorted(set(range(size)) - set(ranks.values()))
    if idle:
        raise ValueError(f"ranks: rank(s) {idle} of this job of {size} own no unit: start "
                         f"mpiexec with fewer ranks or place a unit on them")
    return {x: ranks[x] for x in t.states}
