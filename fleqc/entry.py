"""The `fleqc` command's entry point: Ctrl-C at any moment is a clean exit 130, never a traceback.

Importing this module starts the command (only the `fleqc` script and ``python -m fleqc`` import
it: both run ``from fleqc.entry import main`` and then ``main()``). Its first act is to install the
SIGINT handler, before anything else is imported; fleqc/__init__.py, which runs just before it,
imports nothing. From then on a Ctrl-C raises :class:`Interrupted`:

- unlike KeyboardInterrupt, click does not turn it into "Aborted!" with status 1;
- it unwinds the stack, so files being written are cleaned up on the way out (fleqc.safe_io);
- it is a SystemExit with status 130, so one raised before :func:`main` has begun (during the rest
  of this import, or the script's next line) ends the process with 130 and no traceback too;
- where Python cannot raise it (in a weakref callback or a ``__del__``, which would print "Exception
  ignored" and go on), it is raised again in the main flow a moment later (:func:`_swallowed`).

Before this module runs, Python itself is starting (its site module, the script's first line, the
search for the package); a Ctrl-C there is the interpreter's to handle, as for any Python program.

``FLEQC_SIGINT_AT`` is for the tests (tests/test_outputs.py): ``FLEQC_SIGINT_AT=start`` makes the
command send itself SIGINT right after the handler is installed, ``import:NAME`` when the import of
module NAME begins, ``call:MODULE:QUALNAME`` when that function (or builtin, such as posix:replace)
is called (``call:MODULE:QUALNAME#K``: its K-th call, e.g. a Python function that compiled code calls
back on every pass); a line ``fleqc: SIGINT at ...`` on stderr says that the point was reached.
"""

# Only modules that the interpreter has loaded before running any of fleqc (sys, _signal) above the
# handler: `import signal` would load enum, and a Ctrl-C during it would be a traceback.
import _signal
import sys

EXIT_INTERRUPTED = 128 + _signal.SIGINT  # 130, as shells report a process ended by Ctrl-C


class Interrupted(SystemExit):
    """Ctrl-C (SIGINT) during a fleqc command: the exit with status 130."""

    def __init__(self) -> None:
        super().__init__(EXIT_INTERRUPTED)


_main_reports = False  # main() has begun: it prints the message; before that, the handler does
_interrupted = False  # a Ctrl-C came: the process is on its way out


def _interrupt(signum, frame) -> None:
    global _interrupted
    if not _main_reports and not _interrupted:  # nothing runs yet that could print or need a 2nd Ctrl-C
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        sys.stderr.write("fleqc: interrupted\n")
    _interrupted = True
    raise Interrupted()


_signal.signal(_signal.SIGINT, _interrupt)


def _swallowed(unraisable) -> None:
    """sys.unraisablehook: an Interrupted raised where Python can only print it and go on (a weakref
    callback, a ``__del__``) is raised again 1 ms later by SIGALRM, in whatever runs then. After a
    Ctrl-C, the errors of finalizers of objects it left half done (a ZipFile interrupted in its
    ``close`` fails again in ``__del__``) are not printed either: they are the interruption's."""
    if not isinstance(unraisable.exc_value, (Interrupted, KeyboardInterrupt)):
        if not _interrupted:
            sys.__unraisablehook__(unraisable)
        return
    _signal.signal(_signal.SIGALRM, _interrupt)
    _signal.setitimer(_signal.ITIMER_REAL, 0.001)


sys.unraisablehook = _swallowed


def main() -> None:
    global _main_reports
    _main_reports = True
    try:
        _run()
    except (Interrupted, KeyboardInterrupt):
        _interrupted_exit()
    except SystemExit as finished:  # every command ends so (click's standalone mode): leave at once
        _leave(finished.code)
    except Exception as exc:
        # A Ctrl-C that lands inside compiled code (numba calls back into Python, where the handler
        # raises) comes back wrapped: "SystemError: CPUDispatcher(...) returned a result with an
        # exception set". Once a Ctrl-C has come, whatever escapes is the interruption's.
        if _interrupted or _caused_by_interrupt(exc):
            _interrupted_exit()
        raise


def _leave(code) -> None:
    """End the process with the command's status once its output is out: stdout and stderr
    flushed, the atexit handlers run, then ``os._exit``. The interpreter's own teardown (freeing
    every module, numba's compiled kernels and their LLVM engines one object at a time) took 0.1-0.3 s
    after a command that ran the incremental engine had finished; every file a command
    writes is closed before it returns (fleqc.safe_io), so the teardown had nothing left to do."""
    import atexit
    import os

    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, (int, type(None))):
        sys.stderr.write(f"{code}\n")  # as Python prints a SystemExit that is not a number
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # as Python's own exit when it cannot flush stdout (a closed pipe)
        status = status or 120
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    atexit._run_exitfuncs()
    os._exit(status)


def _interrupted_exit() -> None:
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
    sys.stderr.write("fleqc: interrupted\n")
    sys.exit(EXIT_INTERRUPTED)


def _caused_by_interrupt(exc) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _run() -> None:
    try:
        from fleqc.threads import pin_blas_threads

        pin_blas_threads()  # before numpy loads: it would start a BLAS thread per core (start-up)
        from fleqc.cli import main as cli

        cli(prog_name="fleqc")
    finally:  # the command is over (its exit is on its way): a late Ctrl-C changes nothing
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)


def _sigint_for_tests() -> None:
    """FLEQC_SIGINT_AT (see the module docstring): a Ctrl-C at a named point of the command, so that
    the tests of every stage are deterministic."""
    import os  # after the handler; and the interpreter has loaded it at start-up already

    point = os.environ.get("FLEQC_SIGINT_AT")
    if not point:
        return
    kind, _, name = point.partition(":")
    name, _, nth = name.partition("#")  # call:MODULE:QUALNAME#K: the K-th call (inside a loop)
    remaining = [int(nth) if nth.isdigit() else 1]

    def interrupt() -> None:
        sys.stderr.write(f"fleqc: SIGINT at {point}\n")
        sys.stderr.flush()
        _signal.raise_signal(_signal.SIGINT)  # the handler runs before raise_signal returns

    if kind == "start":
        interrupt()
    elif kind == "import":
        sys.meta_path.insert(0, _OnImport(name, interrupt))
    elif kind == "call":
        module, _, qualname = name.partition(":")

        def profile(frame, event, arg) -> None:
            if event == "call":  # a Python function
                called = frame.f_globals.get("__name__"), frame.f_code.co_qualname
            elif event == "c_call":  # a builtin (os.replace is posix:replace)
                called = getattr(arg, "__module__", None), getattr(arg, "__qualname__", None)
            else:
                return
            if called == (module, qualname):
                remaining[0] -= 1
                if remaining[0] == 0:
                    sys.setprofile(None)
                    interrupt()

        sys.setprofile(profile)
    else:
        sys.stderr.write(f"fleqc: FLEQC_SIGINT_AT={point}: not start, import:NAME or call:MODULE:QUALNAME\n")
        sys.exit(2)


class _OnImport:
    """A finder that finds nothing: it calls ``interrupt`` when the import of ``name`` begins."""

    def __init__(self, name, interrupt) -> None:
        self.name, self.interrupt = name, interrupt

    def find_spec(self, fullname, path=None, target=None) -> None:
        if fullname == self.name:
            sys.meta_path.remove(self)
            self.interrupt()
        return None


_sigint_for_tests()

if __name__ == "__main__":  # pragma: no cover
    main()
