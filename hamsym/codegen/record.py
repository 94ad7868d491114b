"""The recording slice: `_span` that also records, every `every` steps, what the user
asked for into preallocated rows, inside the compiled loop.

What can be recorded (the module's RECORD, key -> shape of one row): the loss, every
output (the forward kernel's instantaneous neurons that read no target), every state,
every weight and every weight's Frobenius norm "|W|". A row is taken at each step g
of the learner's count with (g + 1) % every == 0 and holds the values step g reads,
before its update (the loss is that step's loss), so rows line up with run()'s
losses and with predict(). Scalars (the loss, norms) are float64 rows; arrays have the
learner's dtype. A key that was not asked for gets an array with no rows, and the
kernel writes only into arrays that have rows, so one compiled kernel serves every
choice of keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordLoop:
    args: list           # parameter names of _span_record
    lines: list          # its body
    table: dict          # RECORD: key -> shape of one row


def record_loop(net, forward, outputs, forward_buffers, run_args, run_call, shape_of,
                metrics=None):
    """`_span_record`: its arguments, body and the RECORD table.

    forward: the forward Kernel; outputs: {name: forward buffer}; run_args/run_call:
    the argument and call lists of `_span`; shape_of: variable -> storage shape;
    metrics: the MetricsCode (codegen.metrics) whose lines run before each step."""
    inputs = {v.name for v in net.of_kind("input")}
    # outputs held in an array buffer (what forward() returns)
    outputs = {name: buf for name, buf in outputs.items() if forward_buffers.get(buf)}
    weights = net.of_kind("weight")
    states = net.of_kind("state")

    def fwd(a):
        if a in inputs:
            return f"{a}_stream[_k]"
        return f"_f_{a}" if a in forward_buffers else a

    slots = [("loss", "_r_loss", ())]
    slots += [(name, f"_r_o_{name}", forward_buffers[buf]) for name, buf in outputs.items()]
    slots += [(x.name, f"_r_s_{x.name}", shape_of(x)) for x in states]
    slots += [(w.name, f"_r_w_{w.name}", shape_of(w)) for w in weights]
    slots += [(f"|{w.name}|", f"_r_n_{w.name}", ()) for w in weights]
    slots += metrics.slots if metrics else []
    args = list(run_args) + ["_start", "_stop", "_guard", "_g0", "_every", "_outputs"]
    args += [f"_f_{b}" for b in forward_buffers]
    args += list(metrics.args) if metrics else []
    args += ["_row", "_wrap", "_r_step"]
    args += [s for _, s, _ in slots]

    lines = ["for _k in range(_start, _stop):",
             "    _g = _g0 + _k - _start",
             "    _take = (_g + 1) % _every == 0",
             "    if _take:",
             "        _r_step[_row] = _g"]
    if outputs:
        lines += ["        if _outputs:",
                  f"            forward({', '.join(fwd(a) for a in forward.args)})"]
    # copies as loops over the known sizes: Numba compiles these much faster than a
    # broadcast assignment of a whole array
    copies = [(f"_r_o_{name}", f"_f_{buf}", forward_buffers[buf]) for name, buf in outputs.items()]
    copies += [(f"_r_s_{x.name}", x.name, shape_of(x)) for x in states]
    copies += [(f"_r_w_{w.name}", w.name, shape_of(w)) for w in weights]
    for slot, source, shape in copies:
        lines += [f"        if {slot}.shape[0]:"]
        if len(shape) == 1:
            lines += [f"            for _i in range({shape[0]}):",
                      f"                {slot}[_row, _i] = {source}[_i]"]
        else:
            lines += [f"            for _i in range({shape[0]}):",
                      f"                for _j in range({shape[1]}):",
                      f"                    {slot}[_row, _i, _j] = {source}[_i, _j]"]
    for w in weights:                   # sum of squares in float64, no temporary array
        shape = shape_of(w)
        lines += [f"        if _r_n_{w.name}.shape[0]:", "            _s = 0.0"]
        if len(shape) == 1:
            lines += [f"            for _i in range({shape[0]}):",
                      f"                _s += float({w.name}[_i]) * float({w.name}[_i])"]
        else:
            lines += [f"            for _i in range({shape[0]}):",
                      f"                for _j in range({shape[1]}):",
                      f"                    _s += float({w.name}[_i, _j]) * float({w.name}[_i, _j])"]
        lines += [f"            _r_n_{w.name}[_row] = math.sqrt(_s)"]
    if metrics and metrics.lines:
        lines += metrics.lines
    lines += [f"    _l = step({', '.join(run_call)})",
              "    losses[_k] = _l",
              "    if _take:",
              "        if _r_loss.shape[0]:",
              "            _r_loss[_row] = _l",
              "        _row += 1",
              "        if _row == _wrap:",
              "            _row = 0",
              "    if _guard and not math.isfinite(_l):",
              "        return _k + 1",
              "return _stop"]
    return RecordLoop(args=args, lines=lines, table={key: shape for key, _, shape in slots})
