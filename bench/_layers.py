"""Instructions per layer of a request under callgrind: each chosen Python callable runs inside a C function
of its own name (``layer_<label>``, compiled at run time), so ``callgrind_annotate --inclusive=yes`` gives
each layer's inclusive instructions, which a plain callgrind profile of CPython cannot (every Python frame is
``_PyEval_EvalFrameDefault``).

    LAYERS = layers_install(SPECS)   # before the requests; SPECS: (label, owner, attribute name)

An owner is a class (its attribute is replaced on it) or a module (the function is replaced in every loaded
module that holds it by that name, as ``from x import f`` binds it). The marker's own cost (a ctypes call and
callback, ~10-20 k instructions) is inside each layer it wraps: compare a layer with itself, not absolutely.
Bench-only: never imported by the application.
"""
from __future__ import annotations

import ctypes
import inspect
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

_CALLBACK = ctypes.CFUNCTYPE(None)


def _library(labels: list[str]) -> ctypes.CDLL:
    """``layer_enter(i, cb)`` calls ``layer_<label i>(cb)``, which calls ``cb``: libffi's hand-written call
    frame hides the function it calls from callgrind, not the ones that function calls in C."""
    source = "".join(f"__attribute__((noinline)) void layer_{label}(void (*cb)(void)) {{ cb(); "
                     f"__asm__ volatile(\"\"); }}\n" for label in labels)
    cases = "".join(f"case {i}: layer_{label}(cb); break;\n" for i, label in enumerate(labels))
    source += f"void layer_enter(int i, void (*cb)(void)) {{ switch (i) {{\n{cases}}} }}\n"
    directory = Path(tempfile.mkdtemp(prefix="layers-"))
    (directory / "layers.c").write_text(source)
    subprocess.run(["cc", "-O0", "-shared", "-fPIC", "-o", str(directory / "layers.so"),
                    str(directory / "layers.c")], check=True)
    return ctypes.CDLL(str(directory / "layers.so"))


def _wrapped(enter, index: int, fn):
    def layer(*args, **kwargs):
        box: list = []

        def run() -> None:
            try:
                box.append((True, fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001  (handed back to the caller below)
                box.append((False, exc))

        enter(index, _CALLBACK(run))
        ok, value = box[0]
        if not ok:
            raise value
        return value
    layer.__wrapped__ = fn
    return layer


def layers_install(specs: list[tuple[str, object, str]]) -> list[str]:
    """Wrap each ``(label, owner, name)``; returns the labels (as ``layer_<label>`` in the profile)."""
    labels = [re.sub(r"\W", "_", label) for label, _, _ in specs]
    lib = _library(labels)
    enter = lib.layer_enter
    enter.argtypes, enter.restype = [ctypes.c_int, _CALLBACK], None
    for index, (_, owner, name) in enumerate(specs):
        marker = (enter, index)
        original = inspect.getattr_static(owner, name)
        if isinstance(original, property):
            setattr(owner, name, property(_wrapped(*marker, original.fget), original.fset))
        elif isinstance(owner, type):
            setattr(owner, name, _wrapped(*marker, original))
        else:
            wrapper = _wrapped(*marker, original)
            for module in list(sys.modules.values()):
                if isinstance(module, types.ModuleType) and module.__dict__.get(name) is original:
                    setattr(module, name, wrapper)
    return labels
