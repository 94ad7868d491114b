"""Rendering, stamping and writing generated modules.

A module is a pure function of the derived system, the schedule, the dtype and
the hamsym/numba/Python versions: the same inputs give byte-identical source (no
timestamps, everything ordered). Its SPEC_HASH is the SHA-256 of the source with
the hash line blanked, so `load` can tell a fresh file from a stale or foreign
one by content alone. Files are written to a temporary file and renamed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import keyword
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .. import __version__
from .. import runtime
from ..declare.expr import Add, add, scale
from ..derive.underflow import underflow
from ..errors import DeclarationError
from ..runtime.files import not_a_link, write_atomic  # noqa: F401 (the workbench writes through it too)
from .advance import lower_advance
from .distributed import plan as distributed_plan
from .forward import lower_forward
from .layout import layout
from .lower import PARALLEL_WORK
from .metrics import lower_metrics
from .per_weight import with_per_weight
from .schedule import Schedule, components
from .step import Kernel
from .step import lower_step

_HASH_LINE = re.compile(r'^SPEC_HASH = "[0-9a-f]*"$', re.M)
# the lines a module's STRUCTURE leaves out: its own hashes and the default values
_NOT_STRUCTURE = re.compile(r'^(SPEC_HASH|STRUCTURE|HYPER|PARAMS) = .*$', re.M)


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
    env = jinja2.Environment(loader=loader, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["py"] = repr            # tables are printed as Python literals
    return env


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


@dataclass(frozen=True)
class Doc:
    """The module's docstring: what it computes, in words and equations."""
    name: str
    versions: dict
    scheme: str
    dtype: str
    equations: list
    schedule: list
    state_maps: list
    units: list
    layout: list         # (group, names) of step()'s parameters
    per_weight: list     # the weights with their own hyperparameters
    kernels: dict        # kernel name -> what it does


@dataclass(frozen=True)
class Kernels:
    units: list          # Kernel: every unit's emit_ and update_ kernel, emits first
    driver: list         # body of step()
    forward: Kernel
    advance: Kernel
    prediction: Kernel | None    # what metrics compare with the target (codegen.metrics)


@dataclass(frozen=True)
class Runtime:
    name: str            # the folder (and package) beside the module
    digest: str


def render(system, *, scheme="nonlocal", groups=(), reset_neuron_costate=False,
           reset_weight_costate=False, fresh_weight_costate=False, dtype="float64",
           threads="auto", per_weight=None, versions=None):
    """The source of the integrator module for `system` (a str)."""
    system = with_per_weight(system, per_weight)
    schedule = Schedule(scheme, reset_neuron_costate, reset_weight_costate, groups,
                        fresh_weight_costate)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
    why = underflow(system.hyper, dtype)
    if why:
        raise DeclarationError(f"network {system.net.name!r}, dtype {dtype}: {why}")
    split = threads_threshold(threads)
    code = lower_step(system, schedule, split)
    forward, outputs, forward_buffers = lower_forward(system, split)
    advance, advance_buffers = lower_advance(system, schedule, code.units, forward_buffers)
    plan = distributed_plan(code, system, schedule.scheme)
    metrics = lower_metrics(system, split)
    tables, loops = layout(system, code, forward, outputs, forward_buffers, advance,
                           advance_buffers, plan, metrics)
    source = _template().render(
        doc=_doc(system, schedule, code, tables, loops, dtype,
                 versions or current_versions()),
        schedule=schedule, tables=tables, loops=loops, distributed=plan,
        kernels=Kernels(code.kernels, code.driver, forward, advance, metrics.kernel),
        runtime=Runtime(runtime.NAME, runtime.DIGEST),
        structure="")
    structure = hashlib.sha256(_NOT_STRUCTURE.sub("", source).encode()).hexdigest()
    return _stamp(source.replace('STRUCTURE = ""', f'STRUCTURE = "{structure}"', 1))


def _doc(system, schedule, code, tables, loops, dtype, versions):
    net = system.net
    weights, states = net.of_kind("weight"), net.of_kind("state")
    kernels = {}
    for u in code.units:
        owns = ", ".join(v.name for v in u.states + u.weights) or "nothing"
        kernels[f"emit_{u.name}"] = f"Messages of unit {u.name} (owns {owns}) to other units"
        kernels[f"update_{u.name}"] = f"Update of unit {u.name}: {owns}"
    state_maps = []
    for x in states:
        update = add(x, scale(net.delta, net.dynamics_of[x.name]))
        terms = update.args if isinstance(update, Add) else (update,)
        if x not in terms:       # delay form f = (g - x)/delta: the Euler step is the map g
            state_maps.append(f"{x.name}: delay form (g - {x.name})/delta, so the step applies "
                              f"the map exactly: {x.name}+ = {update}")
        else:
            state_maps.append(f"{x.name}: Euler, {x.name}+ = {update}")
    arrays, n = loops.step_args, len(weights)
    return Doc(
        name=net.name, versions=versions, scheme=schedule.scheme, dtype=dtype,
        equations=[line.strip() for line in str(system).splitlines()[1:]],
        schedule=schedule.describe([] if schedule.scheme == "local" else
                                   [(u.name, components(net, u.states)) for u in code.units]),
        state_maps=state_maps,
        units=[f"{u.name}: states {', '.join(x.name for x in u.states) or '-'}; weights "
               f"{', '.join(w.name for w in u.weights) or '-'}" for u in code.units],
        layout=[("weights", arrays[:n]), ("weight costates", arrays[n:2 * n]),
                ("states, state costates", arrays[2 * n:2 * n + 2 * len(states)]),
                ("inputs, targets", list(tables.inputs) + list(tables.targets)),
                ("hyperparameters, params", list(tables.scalars)),
                ("work buffers", list(code.buffers))],
        kernels=kernels, per_weight=list(system.per_weight))


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


OPTIONS = ("scheme", "groups", "reset_neuron_costate", "reset_weight_costate",
           "fresh_weight_costate", "dtype", "threads", "per_weight")


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
    ...]), reset_neuron_costate, reset_weight_costate, fresh_weight_costate (scheme
    'local': the weights move with the new p_w, the authors' local=False on a network
    with neuron states; docs/authors.md), dtype ('float64' or 'float32'), threads ('auto', the default: the row loops of layers of 2^20
    weights or more run on all of Numba's threads; False: one thread; True: every
    matrix loop is threaded; the results are the same bit for bit), per_weight (weights
    with their own gamma, beta and theta: True for every weight, a list of weight names or
    tuples of them, or a dict {name or tuple: {"beta": 0.1, ...}} of defaults;
    hamsym.codegen.per_weight).
    """
    _check_options(options, "generate")
    return _write(system, path, options, overwrite)[0]


def _existing(path):
    """The text of the file at path (None if there is none), refusing what hamsym must
    not read or replace: a symbolic link, a folder, a FIFO or device."""
    not_a_link(path)
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
    write_runtime(path.parent)
    return path, source


def write_runtime(folder):
    """The runtime beside the modules in folder: hamsym_runtime_<digest>/, a copy of
    hamsym.runtime's files, byte for byte (files already right are left alone). Returns
    the runtime's folder."""
    target = Path(folder) / runtime.NAME
    for source in sorted(Path(runtime.FOLDER).glob("*.py")):
        data = source.read_bytes()
        copy = target / source.name
        if not copy.is_file() or copy.read_bytes() != data:
            write_atomic(copy, data)
    if runtime.digest(target) != runtime.DIGEST:
        extra = sorted(set(p.name for p in target.glob("*.py")) -
                       set(p.name for p in Path(runtime.FOLDER).glob("*.py")))
        raise RuntimeError(f"{target} holds files that are not hamsym's runtime "
                           f"({', '.join(extra) or 'changed while written'}): remove them")
    return target


def _import_runtime():
    """hamsym's own runtime under the name generated modules import it by (the same bytes
    as the copies beside the modules: the digest says so), so that in this process every
    module runs on hamsym.runtime itself: one set of classes, one Numba cache."""
    if runtime.NAME not in sys.modules:
        importlib.import_module("hamsym.runtime.module")
        for name, module in list(sys.modules.items()):
            if name == "hamsym.runtime" or name.startswith("hamsym.runtime."):
                sys.modules.setdefault(runtime.NAME + name[len("hamsym.runtime"):], module)


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
    _import_runtime()
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
