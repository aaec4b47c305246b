"""Loading a user's code: import a file by its path and take one function from it.

``bngraph derive --function FILE.py:FUNC`` and ``check-backward FILE.py:BACKWARD`` both
start here. The file is compiled fresh each time and imported under a name of its own.
"""
import hashlib
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path

from bngraph.errors import BngraphError, one_line


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Always compile the file as it is now: a cached .pyc of a file rewritten within the
    same second (same size) would otherwise run the old code, and none is written."""

    def get_code(self, fullname):
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)


def _import_file(path):
    """Import a Python file under a name of its own, its folder on sys.path while it runs."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    name = f"bngraph_user_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path, loader=_FreshLoader(name, str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling in the file look themselves up here
    sys.path.insert(0, str(path.parent.resolve()))  # so that it can import its neighbours
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        del sys.modules[name]
        raise BngraphError(f"cannot import {path}: SyntaxError: {error.msg} (line {error.lineno})") from None
    except (Exception, SystemExit) as error:
        del sys.modules[name]
        raise BngraphError(f"cannot import {path}: {type(error).__name__}: {one_line(error)}") from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def load_function(spec):
    """The function FUNC of ``"FILE.py:FUNC"``, importing FILE.py by its path.

    >>> load_function("no_such_file.py:f")
    Traceback (most recent call last):
    bngraph.errors.BngraphError: no such file: no_such_file.py
    """
    path_text, colon, name = str(spec).rpartition(":")
    if not colon or not path_text or not name:
        raise BngraphError(f"expected FILE.py:FUNC, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise BngraphError(f"no such file: {path_text}")
    if path.suffix != ".py":
        raise BngraphError(f"not a Python file: {path_text}")
    module = _import_file(path)
    function = getattr(module, name, None)
    if function is None:
        known = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise BngraphError(f"{path_text} has no function {name!r} (it has: {', '.join(known) or 'none'})")
    if not callable(function):
        raise BngraphError(f"{path_text}:{name} is not a function")
    return function


def function_name(function):
    """``FILE.py:NAME`` for a function defined in a file, else its name.

    >>> function_name(len)
    'len'
    """
    code = getattr(function, "__code__", None)
    where = f"{Path(code.co_filename).name}:" if code else ""
    return where + getattr(function, "__name__", repr(function))
