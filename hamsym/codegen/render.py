"""Rendering, stamping and writing generated modules.

A module is a pure function of the derived system, the schedule, the dtype and
the hamsym/numba/Python versions: the same inputs give byte-identical source (no
timestamps, everything ordered). Its SPEC_HASH is the SHA-256 of the source with
the hash line blanked, so `load` can tell a fresh file from a stale or foreign
one by content alone. Files are written to a temporary file and renamed.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import keyword
import os
import re
import secrets
import stat
import sys
from pathlib import Path

import jinja2

from .. import __version__
from ..declare.expr import Add, add, scale
from .schedule import Schedule, components
from ..declare.network import HYPERPARAMETERS
from ..derive.underflow import underflow
from ..errors import DeclarationError
from .distributed import plan as distributed_plan
from .ensemble import ensemble_context
from .advance import lower_advance
from .forward import lower_forward
from .lower import PARALLEL_WORK, storage_shape
from .record import record_context
from .step import lower_step
from .vector_math import source as vector_math_source

_HASH_LINE = re.compile(r'^SPEC_HASH = "[0-9a-f]*"$', re.M)


def current_versions():
    # the installed version, without importing numba (a third of a second)
    return {"hamsym": __version__, "numba": importlib.metadata.version("numba"),
            "python": "{}.{}".format(*sys.version_info[:2])}


@functools.lru_cache(maxsize=1)
def _template():
    return _environment().get_template("module.py.jinja")


def _environment():
    loader = jinja2.FunctionLoader(
        lambda name: importlib.resources.files("hamsym.templates").joinpath(name).read_text())
    return jinja2.Environment(loader=loader, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def _ordered_dict_repr(d):
    return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in d.items()) + "}"


def threads_threshold(threads):
    """The Lowering threshold for the `threads` option: "auto" splits loop nests of at
    least PARALLEL_WORK multiply-adds across threads, True every matrix loop, False none."""
    if threads == "auto":
        return PARALLEL_WORK
    if threads is True:
        return 0
    if threads is False:
        return None
    raise ValueError(f"threads must be 'auto', True or False, not {threads!r}")


def render(system, *, scheme="nonlocal", groups=(), reset_neuron_costate=False,
           reset_weight_costate=False, dtype="float64", threads="auto", versions=None):
    """The source of the integrator module for `system` (a str)."""
    schedule = Schedule(scheme, reset_neuron_costate, reset_weight_costate, groups)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
    why = underflow(system.hyper, dtype)
    if why:
        raise DeclarationError(f"network {system.net.name!r}, dtype {dtype}: {why}")
    net = system.net
    split = threads_threshold(threads)
    code = lower_step(system, schedule, split)
    forward, outputs, forward_buffers = lower_forward(system, split)
    advance, advance_buffers = lower_advance(system, schedule, code.units, forward_buffers)
    weights, states = net.of_kind("weight"), net.of_kind("state")
    data = net.of_kind("input") + net.of_kind("target")
    params = net.of_kind("param")
    p = system.costates
    arrays = [w.name for w in weights] + [p[w].name for w in weights] + \
        [x.name for x in states] + [p[x].name for x in states]
    scalars = list(HYPERPARAMETERS) + [q.name for q in params]
    work = list(code.buffers)
    step_args = arrays + [d.name for d in data] + scalars + work
    run_args = arrays + [f"{d.name}_stream" for d in data] + scalars + work + ["losses"]
    run_call = arrays + [f"{d.name}_stream[_k]" for d in data] + scalars + work
    kernel_doc = {}
    for u in code.units:
        owns = ", ".join(v.name for v in u.states + u.weights) or "nothing"
        kernel_doc[f"emit_{u.name}"] = f"Messages of unit {u.name} (owns {owns}) to other units"
        kernel_doc[f"update_{u.name}"] = f"Update of unit {u.name}: {owns}"
    layout = [("weights", ", ".join(a for a in arrays[:len(weights)]) or "-"),
              ("weight costates", ", ".join(arrays[len(weights):2 * len(weights)]) or "-"),
              ("states, state costates", ", ".join(arrays[2 * len(weights):]) or "-"),
              ("inputs, targets", ", ".join(d.name for d in data) or "-"),
              ("hyperparameters, params", ", ".join(scalars)),
              ("work buffers", ", ".join(work) or "-")]
    hyper = {k: system.hyper[k] for k in HYPERPARAMETERS}
    state_maps = []
    for x in states:
        update = add(x, scale(net.delta, net.dynamics_of[x.name]))
        terms = update.args if isinstance(update, Add) else (update,)
        if x not in terms:       # delay form f = (g - x)/delta: the Euler step is the map g
            state_maps.append(f"{x.name}: delay form (g - {x.name})/delta, so the step applies "
                              f"the map exactly: {x.name}+ = {update}")
        else:
            state_maps.append(f"{x.name}: Euler, {x.name}+ = {update}")
    versions = versions or current_versions()
    predict = _predict_context(net, forward, outputs, forward_buffers, advance, advance_buffers,
                               scalars)
    context = dict(
        name=net.name, versions=versions, vector_math=vector_math_source(), versions_repr=_ordered_dict_repr(versions),
        schedule=schedule, dtype=dtype, schedule_lines=schedule.describe(
            [] if schedule.scheme == "local" else [(u.name, components(net, u.states)) for u in code.units]), equations=[line.strip() for line in str(system).splitlines()[1:]],
        has_states=bool(states), layout=layout, spec_hash="",
        inputs=_ordered_dict_repr({v.name: storage_shape(v.shape) for v in net.of_kind("input")}),
        targets=_ordered_dict_repr({v.name: storage_shape(v.shape) for v in net.of_kind("target")}),
        weights=_ordered_dict_repr({v.name: storage_shape(v.shape) for v in weights}),
        params=_ordered_dict_repr({q.name: net.defaults[q.name] for q in params}),
        hyper=_ordered_dict_repr(hyper),
        work=_ordered_dict_repr(code.buffers),
        step_args=", ".join(step_args), run_args=", ".join(run_args),
        run_call=", ".join(run_call), kernels=code.kernels, driver=code.driver,
        units=code.units, kernel_doc=kernel_doc, state_maps=state_maps,
        arrays_tuple="".join(f"self._weights[{w.name!r}], " for w in weights) +
                     "".join(f"self._costates[{w.name!r}], " for w in weights) +
                     "".join(f"self._states[{x.name!r}], " for x in states) +
                     "".join(f"self._costates[{x.name!r}], " for x in states),
        forward=forward, forward_buffers=_ordered_dict_repr(forward_buffers),
        outputs=_ordered_dict_repr(outputs), forward_arg_names=repr(tuple(forward.args)),
        scalar_names=repr(tuple(scalars)),
        input_names=", ".join(v.name for v in net.of_kind("input")),
        input_params="".join(f", {v.name}" for v in net.of_kind("input")),
        scalars_tuple="".join("float(theta_neurons), " if n == "theta_neurons" else
                              f"float(h[{n!r}]), " for n in scalars),
        data_names=", ".join(d.name for d in data),
        states=_ordered_dict_repr({x.name: storage_shape(x.shape) for x in states}),
    )
    distributed = distributed_plan(code, system, schedule.scheme)
    context.update(
        distributed=distributed, distributed_reason=repr(distributed.reason),
        distributed_units=[repr(u) for u in distributed.units],
        distributed_channels=[repr((c.name, c.source, list(c.readers), c.state))
                              for c in distributed.channels],
        rank_loop_args=", ".join(arrays + [f"{d.name}_stream" for d in data] + scalars + work))
    context.update(predict)
    context.update(record_context(net, forward, outputs, forward_buffers, run_args, run_call,
                                  lambda v: storage_shape(v.shape)))
    context.update(_bound_context(net, system.costates, step_args, data, scalars,
                                  code.buffers))
    context.update(ensemble_context(system, step_args))
    source = _template().render(context)
    return _stamp(source)


def _predict_context(net, forward, outputs, forward_buffers, advance, advance_buffers, scalars):
    """What the template needs for _advance and _predict: predict's inputs are streams
    _in_<input>, and it records every output and state into _rec_<name> at each row."""
    inputs = [v.name for v in net.of_kind("input")]
    states = [x.name for x in net.of_kind("state")]
    recorded = [(name, buffer) for name, buffer in outputs.items()] + [(x, x) for x in states]
    args = [w.name for w in net.of_kind("weight")] + states + [f"_in_{n}" for n in inputs] + \
        scalars + list(forward_buffers) + list(advance_buffers) + \
        [f"_rec_{name}" for name, _ in recorded] + ["_start", "_stop"]

    def call(kernel):
        return ", ".join(f"_in_{a}[_k]" if a in inputs else a for a in kernel.args)
    return dict(advance=advance, advance_buffers=_ordered_dict_repr(advance_buffers),
                predict_args=", ".join(args), forward_call=call(forward),
                advance_call=call(advance), recorded=recorded)


def _bound_context(net, costates, step_args, data, scalars, buffers):
    """What the template needs for a learner's bound step (see _bound_step): each
    argument of step(), in step_args order, as the kernel gets it: an array from the
    learner's tables ("_weights", "_states", "_costates" or "work": table, key, storage
    shape), a sample array, or a scalar (its index in the scalars)."""
    tables = {}
    for kind, table in (("weight", "_weights"), ("state", "_states")):
        for v in net.of_kind(kind):
            tables[v.name] = (table, v.name, storage_shape(v.shape))
            tables[costates[v].name] = ("_costates", v.name, storage_shape(v.shape))
    tables.update((name, ("work", name, shape)) for name, shape in buffers.items())
    data = [(d.name, storage_shape(d.shape)) for d in data]
    like = data[0][0] if data else "_like"    # an array of the learner's dtype
    bound = [(arg, tables[arg]) for arg in step_args if arg in tables]
    missing = set(step_args) - set(tables) - {d for d, _ in data} - set(scalars)
    assert not missing, f"step() arguments of no known kind: {missing}"
    return dict(
        bound_table="(" + "".join(f"({t!r}, {k!r}, {s!r}), " for _, (t, k, s) in bound) + ")",
        bound_args=", ".join(["_table"] + [n for n, _ in data] + ([] if data else ["_like"])),
        bound_shapes=repr([s for _, s in data] or [(0,)]),     # _like: an empty vector
        bound_views=[(arg, i, like, s) for i, (arg, (_, _, s)) in enumerate(bound)],
        bound_scalars=list(enumerate(scalars)),
        bound_data=data)


def _stamp(source):
    digest = hashlib.sha256(_HASH_LINE.sub('SPEC_HASH = ""', source).encode()).hexdigest()
    return _HASH_LINE.sub(f'SPEC_HASH = "{digest}"', source, count=1)


def is_hamsym_module(text):
    """True when text is a generated module whose hash matches its own content."""
    m = _HASH_LINE.search(text)
    return bool(m) and _stamp(_HASH_LINE.sub('SPEC_HASH = ""', text)) == text


def spec_hash(text):
    """The SPEC_HASH a module's text declares ('' if none)."""
    m = re.search(r'^SPEC_HASH = "([0-9a-f]*)"$', text, re.M)
    return m.group(1) if m else ""


def write_atomic(path, text):
    """Write text (str, as UTF-8, or bytes) to path so that readers see the old file or
    the new one, never a part; the new file gets the mode any new file gets (umask). The content goes to
    an unnamed file first (O_TMPFILE), so a process killed while writing leaves
    nothing behind; where that is not available, a named temporary file, which a
    later write removes once the process that made it is gone."""
    path = _not_a_link(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    try:
        if not _publish_unnamed(path.parent, data, tmp):
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _not_a_link(path):
    """path, unless it is a symbolic link: writing would replace the link, or, done in
    place, change the file it points to, neither of which hamsym made."""
    if path.is_symlink():
        raise FileExistsError(f"{path}: is a symbolic link; hamsym never writes through one "
                              "nor replaces it: give the path of a regular file")
    return path


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)


def _publish_unnamed(folder, data, tmp):
    """Write data to an unnamed file in folder, then give it the name tmp. False where
    the platform or file system has no unnamed files."""
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except (AttributeError, OSError):
        return False
    try:
        _write_all(fd, data)
        # linkat(AT_SYMLINK_FOLLOW) through /proc names an unnamed file; a dir fd makes
        # os.link call linkat rather than link (which would not follow the /proc link)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=folder_fd, follow_symlinks=True)
        except OSError:
            return False
        finally:
            os.close(folder_fd)
    finally:
        os.close(fd)
    return True


def _remove_orphans(path):
    """Temporary files of path left by processes that no longer run."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2:].split(".")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            pass                               # not ours, or a live process of another user


OPTIONS = ("scheme", "groups", "reset_neuron_costate", "reset_weight_costate", "dtype", "threads")


def _check_options(options, where):
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"{where}() got unknown option(s) {', '.join(map(repr, unknown))}; "
                        f"valid options: {', '.join(OPTIONS)}")


def default_path(system, source):
    """generated/<network>_<hash>.py: the name identifies the spec, so runs that derive
    different specs (a sweep over gamma, say) never share, or race for, one file."""
    return Path("generated") / f"{system.net.name}_{spec_hash(source)[:12]}.py"


def _check_path(path):
    """A path a module can be imported from, under a name that shadows nothing."""
    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"{path}: a generated module's path must end in .py")
    name = path.stem
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{path.name}: the file name must be a Python identifier, so that "
                         "the module can be imported")
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        raise ValueError(f"{path.name}: {name!r} is a module of Python's standard library; "
                         "a generated module of that name would shadow it: choose another name")
    module = sys.modules.get(name)
    if module is not None:
        where = getattr(module, "__file__", None)
        shadows = not _is_generated(module)
    else:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        where = found.origin if found is not None else None
        shadows = found is not None and not (where and _is_generated_file(where))
    if shadows:
        raise ValueError(f"{path.name}: {name!r} is already an importable module ({where}); a generated "
                         "module of that name would shadow it: choose another name")
    return path


def _is_generated(module):
    return isinstance(getattr(module, "SPEC_HASH", None), str) and hasattr(module, "Integrator")


def _is_generated_file(origin):
    try:
        return bool(spec_hash(Path(origin).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def generate(system, path=None, *, overwrite=False, **options):
    """Write the integrator module for `system` to `path` and return the path.

    The default path is generated/<network>_<hash>.py, named by the spec's hash.
    Rewrites the file only when its content would change (so Numba's cache stays
    valid); a stale module (another spec's) is replaced. A file that is not a hamsym
    module, or a module edited since hamsym wrote it, is refused (FileExistsError)
    unless overwrite=True; a symbolic link is always refused. The module is compiled
    before it is written, so a file that does not compile is never left.

    Options: scheme ('nonlocal', 'local' or 'partial' with groups=[[state names],
    ...]), reset_neuron_costate, reset_weight_costate, dtype ('float64' or
    'float32'), threads ('auto', the default: the row loops of layers of 2^20
    weights or more run on all of Numba's threads; False: one thread; True: every
    matrix loop is threaded; the results are the same bit for bit).
    """
    _check_options(options, "generate")
    return _write(system, path, options, overwrite)[0]


def _existing(path):
    """The text of the file at path (None if there is none), refusing what hamsym must
    not read or replace: a symbolic link, a folder, a FIFO or device."""
    _not_a_link(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise FileExistsError(f"{path}: exists and is not a regular file; choose another path")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""                               # not text: certainly not a module of ours


def _compiled(source, path, system):
    """Refuse a module that Python cannot compile before it reaches the disk."""
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as err:
        raise RuntimeError(
            f"the module generated for network {system.net.name!r} does not compile "
            f"({err.msg}, line {err.lineno}: {(err.text or '').strip()!r}); nothing was "
            "written. This is a bug of hamsym: please report it with the network") from None


def _write(system, path, options, overwrite=False):
    """(path, source) of the module for system, written unless the file holds it already."""
    if path is not None:
        _check_path(path)                     # refused before any work
    source = render(system, **options)
    path = _check_path(default_path(system, source) if path is None else path)
    old = _existing(path)
    if old != source:
        if old is not None and not overwrite and not is_hamsym_module(old):
            raise FileExistsError(
                f"{path}: exists and is not a module hamsym generated (or was edited since); "
                "refusing to replace it: move it, choose another path, or pass overwrite=True "
                "(hamsym generate --overwrite)")
        _compiled(source, path, system)
        write_atomic(path, source)
    return path, source


def load(system, path=None, *, overwrite=False, **options):
    """Generate (if stale) and import the integrator module; returns the module.

    The default path carries the spec's hash; a file that is not a hamsym module is
    refused unless overwrite=True (see `generate`). The module is
    imported under its file's name, as `import <name>` would import it: Numba's
    cache records that name, so the cache then serves a plain import of the same
    file too. load checks that the module it imported is the one it wrote: if
    another process wrote a different spec to the same path meanwhile, it raises.
    """
    _check_options(options, "load")
    path, source = _write(system, path, options, overwrite)
    want = spec_hash(source)
    path = Path(path).resolve()
    name = path.stem
    old = sys.modules.get(name)
    if old is not None and getattr(old, "__file__", None) == str(path) and \
            getattr(old, "SPEC_HASH", None) == want:
        return old
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        if module.SPEC_HASH != want:
            raise RuntimeError(
                f"{path} changed while it was being loaded: it holds the module of spec "
                f"{module.SPEC_HASH[:12]}, this call wrote spec {want[:12]}. Another process "
                "writes a different spec to the same path; give each spec its own path "
                "(the default path is named by the spec's hash)")
    except BaseException:
        if old is not None:
            sys.modules[name] = old
        else:
            del sys.modules[name]
        raise
    return module
