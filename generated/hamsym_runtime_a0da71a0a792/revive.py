"""Pickles of learners: rebuilt in any process, from the module file they came from.

A pickle holds the learner's state and the path, name and SPEC_HASH of its module. It
is rebuilt by a few lines of source carried inside the pickle (numpy and the module's
own imports are all it needs: neither hamsym nor this runtime has to be importable by
name there). The module file is imported only if its content still hashes to the
learner's SPEC_HASH: an edited or regenerated file is refused.
"""

SOURCE = '''
def _revive(path, name, spec_hash, kind, state):
    import hashlib, importlib.util, re, sys
    module = sys.modules.get(name)
    if getattr(module, "SPEC_HASH", None) != spec_hash:
        what = f"cannot unpickle a learner of module {name}"
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImportError(f"{what}: its file {path} cannot be read ({exc}); "
                              "regenerate it with hamsym") from None
        line = re.compile(r'^SPEC_HASH = "[0-9a-f]*"$', re.M)
        blank = line.sub('SPEC_HASH = ""', text, count=1)
        if hashlib.sha256(blank.encode()).hexdigest() != spec_hash:
            raise ImportError(f"{what}: {path} now holds another module (its content does "
                              f"not hash to the learner's SPEC_HASH {spec_hash})")
        if module is not None:
            raise ImportError(f"{what}: another module of that name is imported "
                              f"(SPEC_HASH {getattr(module, 'SPEC_HASH', None)})")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    cls = module.Integrator if kind == "learner" else module.Ensemble
    return cls._from_state(state)
'''


def reduce(obj, kind, state):
    """__reduce__ of a learner (kind "learner") or an ensemble ("ensemble")."""
    t = obj._t
    return eval, ("exec(_SOURCE) or _revive(*_ARGS)",
                  {"_SOURCE": SOURCE, "_ARGS": (t.file, t.module, t.spec_hash, kind, state)})
