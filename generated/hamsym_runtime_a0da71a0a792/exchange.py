"""The MPI exchange of a distributed step: non-blocking sends and receives of the
channels (published states and messages), with deadlines, called from the compiled
rank loop.

numba_mpi is imported when a distributed run starts, so these functions are built then,
once per number of channels (their tags), and handed to the module's rank loop as its
globals. Not cached: their MPI calls are bound to the MPI library of this process.
"""

import ctypes

import numba
import numpy as np

NOTICE_END = -2
_BUILT = {}


def mpi():
    """(mpi4py's MPI, numba_mpi), or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
        import numba_mpi
    except ImportError as e:
        raise ImportError("a distributed run needs mpi4py, numba-mpi and an MPI library: "
                          "pip install 'hamsym[mpi]'") from e
    return MPI, numba_mpi


def tags(n_channels):
    """Message tags: a channel's messages carry its index; then notices, chunk lengths,
    losses, the start-up handshake and the data (one tag per stream from there on)."""
    notice = n_channels
    return dict(notice=notice, chunk=notice + 1, loss=notice + 2, hello=notice + 3,
                data=notice + 4)


def helpers(n_channels):
    """The rank loop's globals for a module with n_channels channels (names start with
    '__': generated and declared names never do)."""
    if n_channels in _BUILT:
        return _BUILT[n_channels]
    mpi_ = mpi()[1]
    tag_notice = tags(n_channels)["notice"]
    libc = ctypes.CDLL(None)
    usleep, sched_yield = libc.usleep, libc.sched_yield
    usleep.argtypes, usleep.restype = [ctypes.c_uint], ctypes.c_int
    sched_yield.argtypes, sched_yield.restype = [], ctypes.c_int

    @numba.njit(nogil=True)
    def pause(dt):
        # poll on (MPI progresses only while polled), giving the core to a rank that
        # shares it; sleep only in a long stall
        if dt > 1e-2:
            usleep(100)
        else:
            sched_yield()

    @numba.njit(nogil=True)
    def copy(dst, src):
        # an explicit loop: a[:] = b would compile a shape-mismatch error message
        a, b = dst.reshape(dst.size), src.reshape(src.size)
        for i in range(a.size):
            a[i] = b[i]

    # channels travel as raw bytes: exact, and any float type (numba_mpi knows float64
    # but not float32)
    @numba.njit(nogil=True)
    def recv(buf, c, src, dst, me, reqs, peers, n):
        if dst[c, me] == 0:
            return n
        _, r = mpi_.irecv(buf.reshape(buf.size).view(np.uint8), src[c], c)
        reqs[n], peers[n] = r[0], src[c]
        return n + 1

    @numba.njit(nogil=True)
    def send(buf, c, src, dst, me, reqs, peers, n):
        for p in range(dst.shape[1]):
            if dst[c, p] != 0:
                _, r = mpi_.isend(buf.reshape(buf.size).view(np.uint8), p, c)
                reqs[n], peers[n] = r[0], p
                n += 1
        return n

    # note rows: 0 incoming notice, 1 notice receive open, 2 the rank each peer said it
    # waits for (-1: none), 3 peer finished the call, 4 outgoing notices; 5: [announced].
    # nreq: notice receives [0, size), announcements [size, 2 size), ends [2 size, 3 size)
    @numba.njit(nogil=True)
    def open_notices(me, note, nreq):
        size = note.shape[1]
        note[:, :] = 0
        note[2, :] = -1
        for p in range(size):
            if p != me:
                _, r = mpi_.irecv(note[0, p:p + 1], p, tag_notice)
                nreq[p] = r[0]
                note[1, p] = 1

    @numba.njit(nogil=True)
    def read_notices(me, note, nreq):
        for p in range(note.shape[1]):
            if note[1, p] != 0:
                _, done = mpi_.test(nreq[p:p + 1])
                if done:
                    if note[0, p] == NOTICE_END:
                        note[3, p], note[1, p] = 1, 0
                    else:
                        note[2, p] = note[0, p]
                        _, r = mpi_.irecv(note[0, p:p + 1], p, tag_notice)
                        nreq[p] = r[0]

    @numba.njit(nogil=True)
    def blame(first, me, note):
        """Follow the chain of ranks waiting on each other from `first` to the one that
        is not waiting for anybody: that one stopped."""
        b = first
        for _ in range(note.shape[1]):
            nxt = note[2, b]
            if nxt < 0 or nxt == me or nxt == first:
                break
            b = nxt
        return b

    @numba.njit(nogil=True)
    def wait(reqs, peers, lo, hi, me, timeout, note, nreq):
        """Completes reqs[lo:hi]; -1, or the rank blamed after `timeout` seconds. A
        wait past half the timeout tells every other rank whom this one waits for."""
        if hi <= lo:
            return -1
        _, done = mpi_.testall(reqs[lo:hi])
        if done:
            return -1
        size = note.shape[1]
        t0 = mpi_.wtime()
        while True:
            _, done = mpi_.testall(reqs[lo:hi])
            if done:
                return -1
            dt = mpi_.wtime() - t0
            pause(dt)
            if dt > 0.1 * timeout:
                read_notices(me, note, nreq)
                first = -1
                for i in range(lo, hi):
                    _, d = mpi_.test(reqs[i:i + 1])
                    if not d:
                        first = peers[i]
                        break
                if first < 0:
                    continue
                if dt > 0.5 * timeout and note[5, 0] == 0:
                    note[5, 0] = 1
                    note[4, 0] = first
                    for p in range(size):
                        if p != me and p != first:
                            _, r = mpi_.isend(note[4, 0:1], p, tag_notice)
                            nreq[size + p] = r[0]
                if dt > timeout:
                    return blame(first, me, note)

    @numba.njit(nogil=True)
    def close(me, timeout, note, nreq):
        """End of a call: every rank tells every other it is done, so no notice is left
        pending; -1, or the rank blamed for not finishing."""
        size = note.shape[1]
        note[4, 1] = NOTICE_END
        for p in range(size):
            if p != me:
                _, r = mpi_.isend(note[4, 1:2], p, tag_notice)
                nreq[2 * size + p] = r[0]
        t0 = mpi_.wtime()
        while True:
            read_notices(me, note, nreq)
            done = True
            late = -1
            for p in range(size):
                if p != me:
                    _, d = mpi_.test(nreq[2 * size + p:2 * size + p + 1])
                    if note[5, 0] != 0 and p != note[4, 0]:
                        _, d2 = mpi_.test(nreq[size + p:size + p + 1])
                        d = d and d2
                    if note[3, p] == 0 or not d:
                        done = False
                        if late < 0:
                            late = p
            if done:
                return -1
            dt = mpi_.wtime() - t0
            pause(dt)
            if dt > timeout:
                return blame(late, me, note)

    @numba.njit(nogil=True)
    def failed(report, bad, k, note):
        report[0], report[1] = bad, k
        return 1

    _BUILT[n_channels] = {
        "__mpi": mpi_, "__request": mpi_.RequestType, "__n_channels": n_channels,
        "__copy": copy, "__recv": recv, "__send": send, "__wait": wait, "__close": close,
        "__open_notices": open_notices, "__failed": failed}
    return _BUILT[n_channels]
