"""The exchange plan of a step whose units run on separate MPI ranks.

In the local and partial schemes the kernels of a unit read only its own arrays,
the state vectors other units publish (_k_<state>) and the messages other units
send to its states (_m_<unit>_<state>). Each of these buffers is a *channel*: one
unit writes it, some other units read it. A rank that owns some of the units
therefore runs, per step,

    post the receives of every channel one of its units reads,
    publish and send its states,        wait for the states it reads,
    run its emit kernels,
    send its messages,                  wait for the messages to its states,
    run its update kernels,

so a step costs the slowest rank's compute plus two latencies (state vectors
forward, messages back). Placement is chosen at run time: the loop below holds a
branch per unit and per channel, taken when the rank owns it.

The nonlocal scheme sweeps the whole network once per step, every update reading
the newest values of the ones before it: there is nothing to run side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from .step import inbox, outbox

NOT_DISTRIBUTABLE = (
    "scheme 'nonlocal' cannot run distributed: each step is one Gauss-Seidel sweep through "
    "the whole network (states forward, then costates backward, each update reading the "
    "newest values of the ones before it), so there is nothing to run side by side; "
    "generate the module with scheme='local' or scheme='partial'")


@dataclass(frozen=True)
class Channel:
    name: str            # its buffer
    source: int          # index of the unit that writes it
    readers: tuple       # indices of the units that read it
    state: str | None    # the state it publishes; None for a message


@dataclass(frozen=True)
class DistributedCode:
    units: list          # one dict per unit: name, states, weights, buffers, data
    channels: list       # Channel, published states first, then messages
    loop: list           # body of the per-step loop of rank_loop
    reason: str | None   # why the module cannot run distributed (then the rest is empty)


def plan(step_code, system, scheme):
    """The channels and per-step loop of a distributed run of step_code's kernels."""
    if scheme == "nonlocal":
        return DistributedCode([], [], [], NOT_DISTRIBUTABLE)
    net, units, p = system.net, step_code.units, system.costates
    kernels = {k.name: k for k in step_code.kernels}
    emits = [kernels.get(f"emit_{u.name}") for u in units]
    updates = [kernels[f"update_{u.name}"] for u in units]
    reads = [set(k.args) | (set(e.args) if e is not None else set())
             for e, k in zip(emits, updates)]

    channels = []
    owner = {x.name: i for i, u in enumerate(units) for x in u.states}
    for x in net.of_kind("state"):
        name = outbox(x).name
        readers = tuple(i for i, r in enumerate(reads) if name in r and i != owner[x.name])
        if readers:
            channels.append(Channel(name, owner[x.name], readers, x.name))
    for i, u in enumerate(units):
        for x in u.outgoing:
            name = inbox(u, x).name
            if emits[i] is not None and name in emits[i].args and name in updates[owner[x.name]].args:
                channels.append(Channel(name, i, (owner[x.name],), None))
    exchanged = {c.name for c in channels}
    if exchanged - set(step_code.buffers):
        raise AssertionError(f"channels without a work buffer: {exchanged - set(step_code.buffers)}")

    data = [v.name for v in net.of_kind("input") + net.of_kind("target")]
    unit_info, seen = [], {}
    for i, u in enumerate(units):
        buffers = sorted(b for b in reads[i] if b in step_code.buffers and b not in exchanged)
        for b in buffers:
            if b in seen:
                raise AssertionError(f"work buffer {b} is used by units {seen[b]} and {u.name}")
            seen[b] = u.name
        unit_info.append(dict(
            name=u.name, states=[x.name for x in u.states], weights=[w.name for w in u.weights],
            costates=[v.name for v in u.weights + u.states], buffers=buffers,
            data=[d for d in data if d in reads[i]]))

    loop = [f"{d} = {d}_stream[__k]" for d in data]
    loop.append("# receives of this step: the published states this rank reads, then messages")
    loop.append("__n = __ch[0]")
    states = [(c_id, c) for c_id, c in enumerate(channels) if c.state is not None]
    messages = [(c_id, c) for c_id, c in enumerate(channels) if c.state is None]
    for c_id, c in states:
        loop.append(f"__n = __recv({c.name}, __ch[{c_id}], __src, __dst, __me, __reqs, __peers, __n)")
    loop.append("__n_states = __n")
    for c_id, c in messages:
        loop.append(f"__n = __recv({c.name}, __ch[{c_id}], __src, __dst, __me, __reqs, __peers, __n)")
    def wait(reqs, peers, lo, hi):
        loop.append(f"__bad = __wait({reqs}, {peers}, {lo}, {hi}, __me, __timeout, __note, __nreq)")
        loop.append("if __bad >= 0:")
        loop.append("    return __failed(__report, __bad, __k, __note)")

    # a send is waited for at once: some transports move the data only while the
    # sender polls, and the sender is about to compute
    loop.append("# publish this rank's states, then wait for the ones it reads")
    loop.append("__t0 = __mpi.wtime()")
    loop.append("__s = __ch[0]")
    for c_id, c in states:
        loop.append(f"if __src[{c_id}] == __me:")
        loop.append(f"    __copy({c.name}, {c.state})")
        loop.append(f"    __s = __send({c.name}, __ch[{c_id}], __src, __dst, __me, __sreqs, __speers, __s)")
    wait("__sreqs", "__speers", "__ch[0]", "__s")
    wait("__reqs", "__peers", "__ch[0]", "__n_states")
    loop.append("__t1 = __mpi.wtime()")
    for i, e in enumerate(emits):
        if e is not None:
            loop.append(f"if __owned[{i}] != 0:")
            loop.append(f"    {e.name}({', '.join(e.args)})")
    loop.append("# send the messages, then wait for the ones to this rank's states")
    loop.append("__t2 = __mpi.wtime()")
    loop.append("__s = __ch[0]")
    for c_id, c in messages:
        loop.append(f"if __src[{c_id}] == __me:")
        loop.append(f"    __s = __send({c.name}, __ch[{c_id}], __src, __dst, __me, __sreqs, __speers, __s)")
    wait("__sreqs", "__speers", "__ch[0]", "__s")
    wait("__reqs", "__peers", "__n_states", "__n")
    loop.append("__t3 = __mpi.wtime()")
    for i, k in enumerate(updates):
        loop.append(f"if __owned[{i}] != 0:")
        loop.append(f"    __unit_losses[__k, {i}] = {k.name}({', '.join(k.args)})")
    loop.append("__t4 = __mpi.wtime()")
    loop.append("__timing[0] += (__t2 - __t1) + (__t4 - __t3)")
    loop.append("__timing[1] += (__t1 - __t0) + (__t3 - __t2)")
    return DistributedCode(unit_info, channels, loop, None)
