"""Loading and running a user's code: import a file by its path, take one function from it,
and keep what that code does to the process in its place while it runs.

``bngraph derive --function FILE.py:FUNC`` and ``check-backward FILE.py:BACKWARD`` both
start here. The file is compiled fresh each time and imported under a name of its own.
Every place that runs user code (importing it, tracing it, calling it on numbers) does so
inside :func:`running_user_code`: what the code prints goes to stderr, each line marked as
the user's, so that it never mixes with bngraph's own output on stdout (JSON, a verdict);
and a ``sys.exit()`` in it becomes an error instead of ending bngraph with that status.
"""
import contextlib
import hashlib
import importlib.machinery
import importlib.util
import inspect
import sys
import sysconfig
import traceback
from functools import lru_cache
from pathlib import Path

from bngraph.errors import BngraphError, one_line


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Always compile the file as it is now: a cached .pyc of a file rewritten within the
    same second (same size) would otherwise run the old code, and none is written."""

    def get_code(self, fullname):
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)


MAX_PRINTED_LINES = 20  # per function and command: a print in a loop must not flood the terminal
_printed: dict[str, int] = {}  # lines each label has printed in this command


def forget_printed() -> None:
    """A new command starts: every function may print MAX_PRINTED_LINES lines again."""
    _printed.clear()


def printed_lines(label: str) -> int:
    """How many lines the user code called ``label`` has printed in this command."""
    return _printed.get(label, 0)


class UserExit(Exception):
    """User code called ``sys.exit()`` (or raised SystemExit): never a success, whatever its status."""

    def __init__(self, status, where: str):
        super().__init__(f"called sys.exit({status!r}){where}")
        self.status = status


class UserInterrupt(KeyboardInterrupt):
    """User code raised KeyboardInterrupt (or Ctrl-C came while it ran): the command stops, saying where."""


class _MarkedLines:
    """A text stream that writes each complete line to stderr as ``LABEL printed: line``."""

    def __init__(self, label: str):
        self.label, self.pending = label, ""

    def write(self, text: str) -> int:
        self.pending += str(text)
        *complete, self.pending = self.pending.split("\n")
        for line in complete:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        count = _printed[self.label] = _printed.get(self.label, 0) + 1
        if count <= MAX_PRINTED_LINES:
            sys.stderr.write(f"{self.label} printed: {line}\n")
        elif count == MAX_PRINTED_LINES + 1:
            sys.stderr.write(f"{self.label} printed more lines; they are not shown\n")

    def flush(self) -> None:
        sys.stderr.flush()

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = ""
        self.flush()

    def isatty(self) -> bool:
        return False


def where_in(error: BaseException, filename: str | None = None) -> str:
    """`` (FILE, line N)`` of the last frame of ``error``'s traceback in ``filename`` (else the last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if f.filename == filename] or frames[-1:]
    return f" ({Path(own[-1].filename).name}, line {own[-1].lineno})" if own else ""


@contextlib.contextmanager
def running_user_code(label: str, filename: str | None = None):
    """Run user code inside: its prints go to stderr marked ``LABEL printed:``; SystemExit becomes
    UserExit, an Exception the caller reports; KeyboardInterrupt still stops the command, saying where.

    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err), running_user_code("my.py:f"):
    ...     print("hello")
    >>> err.getvalue()
    'my.py:f printed: hello\\n'
    """
    stream = _MarkedLines(label)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    except SystemExit as exit_:
        raise UserExit(exit_.code, where_in(exit_, filename)) from None
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, UserInterrupt):
            raise
        raise UserInterrupt(f"in {label}{where_in(interrupt, filename)}") from None
    finally:
        stream.close()


def _import_file(path):
    """Import a Python file under a name of its own, its folder on sys.path while it runs."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    name = f"bngraph_user_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path, loader=_FreshLoader(name, str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling in the file look themselves up here
    sys.path.insert(0, str(path.parent.resolve()))  # so that it can import its neighbours
    try:
        with running_user_code(path.name, str(path)):
            spec.loader.exec_module(module)
    except SyntaxError as error:
        del sys.modules[name]
        raise BngraphError(f"cannot import {path}: SyntaxError: {error.msg} (line {error.lineno})") from None
    except UserExit as error:
        del sys.modules[name]
        raise BngraphError(f"cannot import {path}: it {error}") from None
    except Exception as error:
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


@lru_cache(maxsize=1)
def _library_folders() -> tuple[str, ...]:
    """Where code that is not the user's lives: bngraph, NumPy, SymPy and Python's own library."""
    # found, not imported: plain-Python code runs without NumPy
    folders = {str(Path(importlib.util.find_spec(package).origin).parent) for package in ("numpy", "sympy")}
    folders.add(str(Path(__file__).parent.parent))  # the bngraph package
    folders |= {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
    return tuple(sorted(folder.rstrip("/") + "/" for folder in folders))


def is_user_code(filename: str) -> bool:
    """True for a file of the user's (a notebook cell's ``<ipython-input-…>`` too), False for
    bngraph, NumPy, SymPy and the standard library.

    >>> is_user_code(__file__), is_user_code("/home/me/my_bn.py")
    (False, True)
    """
    if filename.startswith(("<frozen", "<__array_function__")):
        return False
    return not filename.startswith(_library_folders())


def user_frame(frame=None):
    """The innermost frame of the user's code on the stack (from ``frame`` outwards), or None."""
    frame = frame or sys._getframe(1)
    while frame is not None and not is_user_code(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def user_location(frame=None) -> str:
    """``file:line`` of the user's code that is running now: what an error message points at."""
    frame = user_frame(frame or sys._getframe(1))
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


def traceback_location(tb) -> str:
    """``file:line`` of the innermost frame of a traceback that is the user's (else the innermost)."""
    last = user = None
    while tb is not None:
        last = tb
        if is_user_code(tb.tb_frame.f_code.co_filename):
            user = tb
        tb = tb.tb_next
    chosen = user or last
    return f"{chosen.tb_frame.f_code.co_filename}:{chosen.tb_lineno}" if chosen else "?"


def definition_location(function) -> str:
    """``file:line`` where ``function`` is defined."""
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(function)
