"""Quiet output: compress's own lines only, unless asked for everything.

    from compress import quiet
    quiet.install()                 # what `python -m compress` does first; COMPRESS_VERBOSE=1 keeps everything
    with quiet.native_stderr():     # around ExecuTorch lowering and loading, Core ML conversion
        ...

Four kinds of third-party output reach a console, and each is handled where it starts:

- Python warnings (`warnings.warn`): the known-benign ones in `PYTHON_WARNINGS` are ignored by
  category, module and message; any other warning still shows.
- Log records (coremltools and torch speak through `logging`): the known-benign messages in
  `LOG_MESSAGES` are dropped by a filter on the logger that emits them; their other records pass.
- Raw stderr output of native libraries, which no Python filter sees: C/C++ code writing to file
  descriptor 2, and ExecuTorch's runtime, whose C++ log (a cpuinfo probe when it first loads an
  XNNPACK program) is written to `sys.stderr`. `native_stderr()`, around those calls, sends both to
  a temporary file and drops it, or writes it back when the block raises.
- Progress bars of Hugging Face libraries (transformers' "Loading weights"): turned off with their
  own switch (HF_HUB_DISABLE_PROGRESS_BARS), as compress draws its own progress.

Nothing here runs on `import compress`: a library does not change its user's warning filters on
import. `install()` is called by the command line, or by a library user who wants the same.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

VERBOSE_ENV = "COMPRESS_VERBOSE"
FALSE_WORDS = ("", "0", "false", "no", "off")
# Set (unless the user set it) so that huggingface_hub and transformers draw no bars of their own.
HF_PROGRESS_ENV = "HF_HUB_DISABLE_PROGRESS_BARS"


@dataclass(frozen=True)
class WarningFilter:
    """One `warnings.filterwarnings("ignore", ...)` entry: `module` and `message` are regular expressions
    matched at the start of the warning's module name and text."""

    category: type[Warning]
    module: str
    message: str
    reason: str


@dataclass(frozen=True)
class LogMessage:
    """Records of logger `logger` whose message matches `message` (a regular expression, from the start)."""

    logger: str
    message: str
    reason: str


PYTHON_WARNINGS = (
    WarningFilter(
        DeprecationWarning,
        r"(executorch\.|importlib\.resources\._legacy)",
        r"(read_text|open_text|read_binary) is deprecated\. Use files\(\) instead",
        "ExecuTorch reads its own packaged schema files through importlib.resources' legacy calls; nothing a user can change",
    ),
    WarningFilter(
        DeprecationWarning,  # ExecuTorch's ExperimentalWarning is a DeprecationWarning
        r"executorch\.extension\.pybindings\.portable_lib",
        r"This API is experimental and subject to change without notice",
        "ExecuTorch marks its Python runtime bindings experimental when they are imported; compress runs .pte files through them",
    ),
)

LOG_MESSAGES = (
    LogMessage(
        "coremltools",
        r"scikit-learn version \S+ is not supported",
        "a check of coremltools' optional scikit-learn converter on import; compress converts no scikit-learn model",
    ),
    LogMessage(
        "coremltools",
        r"Torch version \S+ has not been tested with coremltools",
        "coremltools' version notice on import; compress's own tests convert and inspect the packages with this torch",
    ),
    LogMessage(
        "coremltools",
        r"Failed to load _ML\w+Proxy: No module named 'coremltools\.libcoremlpython'",
        "Core ML's runtime library exists on macOS only; off macOS compress converts and saves but does not predict, "
        "and the bundle table says so",
    ),
    LogMessage(
        "coremltools",
        r"Core ML embedding \(gather\) layer does not support any inputs besides the weights and indices",
        "the text tower's embedding has a padding index, which only matters for training gradients; inference is the same",
    ),
    LogMessage(
        "torch.utils._pytree",
        r"<enum '\w+'> is an Enum subclass and is now natively supported by torch\.compile",
        "torchao registers its own enums (KernelPreference, ScaleCalculationMode) with pytree on import; "
        "a deprecation addressed to torchao",
    ),
)


class _DropKnownMessages(logging.Filter):
    """Drops a logger's records whose message matches one of `patterns`."""

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business, not ours
            return True
        return not any(p.match(message) for p in self.patterns)


class _State:
    quiet = False  # install() ran and asked for quiet output
    verbose = False  # install() ran and asked for everything
    warning_filters: list[tuple] = []  # the entries install() put in warnings.filters
    log_filters: list[tuple[logging.Logger, logging.Filter]] = []
    set_env = False  # install() set HF_PROGRESS_ENV
    switched_off: list = []  # what turns back on the progress bars install() turned off
    capturing = 0  # depth of native_stderr() blocks
    console: io.TextIOWrapper | None = None  # fd 2 as it was, for Python's writes while fd 2 is captured


def verbose_requested() -> bool:
    """Whether COMPRESS_VERBOSE asks for every third-party line."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in FALSE_WORDS


def is_quiet() -> bool:
    return _State.quiet


def is_verbose() -> bool:
    """True when install() was asked for everything, or COMPRESS_VERBOSE is set."""
    return _State.verbose or verbose_requested()


def install(verbose: bool | None = None) -> bool:
    """Filter the known-benign third-party output (the tables above) and let `native_stderr()` capture
    native writes to fd 2. With `verbose` (default: the COMPRESS_VERBOSE variable), remove what an
    earlier call installed and show everything. Returns whether output is now quiet. Calling it again
    installs nothing twice."""
    if verbose is None:
        verbose = verbose_requested()
    uninstall()
    if verbose:
        _State.verbose = True
        return False
    for entry in PYTHON_WARNINGS:
        warnings.filterwarnings("ignore", message=entry.message, category=entry.category, module=entry.module)
        _State.warning_filters.append(warnings.filters[0])  # filterwarnings puts the new entry first
    by_logger: dict[str, list[str]] = {}
    for entry in LOG_MESSAGES:
        by_logger.setdefault(entry.logger, []).append(entry.message)
    for name, patterns in by_logger.items():
        logger, log_filter = logging.getLogger(name), _DropKnownMessages(patterns)
        logger.addFilter(log_filter)
        _State.log_filters.append((logger, log_filter))
    _quiet_hf_progress_bars()
    _State.quiet = True
    return True


@contextlib.contextmanager
def installed(verbose: bool | None = None) -> Iterator[bool]:
    """`install(verbose)` for the block, then back to the state before it (how the command line runs,
    so that calling `compress.cli.main` in a program leaves its filters as they were)."""
    before = (_State.quiet, _State.verbose)
    try:
        yield install(verbose)
    finally:
        if before[0] or before[1]:
            install(verbose=before[1])
        else:
            uninstall()


def uninstall() -> None:
    """Undo `install()`: its warning filters, log filters and environment setting."""
    if _State.warning_filters:
        ours = {id(f) for f in _State.warning_filters}
        warnings.filters[:] = [f for f in warnings.filters if id(f) not in ours]
        getattr(warnings, "_filters_mutated", lambda: None)()  # what filterwarnings itself calls after a change
        _State.warning_filters = []
    for logger, log_filter in _State.log_filters:
        logger.removeFilter(log_filter)
    _State.log_filters = []
    if _State.set_env:
        os.environ.pop(HF_PROGRESS_ENV, None)
        _State.set_env = False
    for switch_on in _State.switched_off:
        switch_on()
    _State.switched_off = []
    _State.quiet = _State.verbose = False


# (module, function that turns its bars off, function that turns them on), for libraries imported before install()
HF_PROGRESS_SWITCHES = (
    ("huggingface_hub.utils", "disable_progress_bars", "enable_progress_bars"),
    ("transformers.utils.logging", "disable_progress_bar", "enable_progress_bar"),
)


def _quiet_hf_progress_bars() -> None:
    """transformers draws a "Loading weights" bar for every checkpoint it loads; compress shows its own progress."""
    if HF_PROGRESS_ENV not in os.environ:
        os.environ[HF_PROGRESS_ENV] = "1"  # read by huggingface_hub on import
        _State.set_env = True
    for module, off, on in HF_PROGRESS_SWITCHES:
        if module.split(".")[0] in sys.modules:  # imported already: the variable came too late for it
            switches = importlib.import_module(module)
            getattr(switches, off)()
            _State.switched_off.append(getattr(switches, on))


def redirect_stderr(stream) -> contextlib.AbstractContextManager:
    """`contextlib.redirect_stderr(stream)` (a library's Python-level chatter into `stream`), except when
    verbose output is asked for: then nothing is redirected."""
    return contextlib.nullcontext() if is_verbose() else contextlib.redirect_stderr(stream)


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """While quiet, the raw stderr output of the native libraries called inside the block goes to a
    temporary file: dropped when the block ends normally, written back to stderr when it raises (so no
    error is lost). Does nothing unless `install()` made output quiet.

    Raw output is what reaches file descriptor 2 and what is written to `sys.stderr` itself (ExecuTorch's
    C++ runtime logs through it). Python warnings and log records are not raw output: they still
    reach the console, filtered only by the tables above.

    fd 2 and sys.stderr belong to the whole process: keep the block synchronous, and expect another
    thread's raw stderr output during it (a progress bar drawn on stderr) to be captured too. Nested
    blocks share the outer capture."""
    if not _State.quiet or _State.capturing:
        yield
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (a detached process): nothing to keep out
        yield
        return
    _State.capturing += 1
    try:
        with tempfile.TemporaryFile() as capture:
            console = _console_stream(saved)
            previous = sys.stderr
            visible = previous if previous is not None and not _writes_to_fd2(previous) else console
            raw = _CapturedStderr(capture.fileno(), after=visible)
            undo = _route_python_stderr(raw, visible, console)
            os.dup2(capture.fileno(), 2)
            try:
                yield
            except BaseException:
                _stop_capture(saved, raw, undo)
                capture.seek(0)
                visible.write(capture.read().decode("utf-8", errors="backslashreplace"))
                visible.flush()
                raise
            _stop_capture(saved, raw, undo)
    finally:
        os.close(saved)
        _State.capturing -= 1


class _CapturedStderr(io.TextIOBase):
    """sys.stderr inside a `native_stderr()` block: text goes into the capture file. After the block it
    goes to `after`, for whatever kept a reference (a log handler made in the block by basicConfig)."""

    def __init__(self, fd: int, after):
        super().__init__()
        self._fd: int | None = fd
        self._after = after

    def release(self) -> None:
        self._fd = None

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._fd is None:
            return self._after.write(text)
        _write_all(self._fd, text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        if self._fd is None:
            self._after.flush()

    def fileno(self) -> int:
        return 2 if self._fd is not None else self._after.fileno()  # fd 2 is the capture file meanwhile

    def isatty(self) -> bool:
        return False if self._fd is not None else self._after.isatty()


def _console_stream(saved: int) -> io.TextIOWrapper:
    """A text stream on a lasting duplicate of fd 2 as it was before capture. Kept for the process's
    life: a log handler created inside a block (ExecuTorch's XNNPACK partitioner calls basicConfig on
    import) holds on to it and must still reach the console afterwards."""
    current = _State.console
    if current is not None and not current.closed:
        try:
            if os.path.samestat(os.fstat(current.fileno()), os.fstat(saved)):
                return current
        except OSError:
            pass
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    _State.console = open(os.dup(saved), "w", encoding=encoding, errors="backslashreplace", buffering=1)
    return _State.console


def _route_python_stderr(raw, visible, console):
    """sys.stderr to `raw`; warnings and the last-resort log handler to `visible` (sys.stderr as it was,
    or `console` where that wrote to fd 2); log handlers on fd 2 to `console`. Returns what undoes it."""
    previous_stderr, previous_show, previous_last_resort = sys.stderr, warnings.showwarning, logging.lastResort

    def show_warning(message, category, filename, lineno, file=None, line=None):
        previous_show(message, category, filename, lineno, visible if file is None else file, line)

    last_resort = logging.StreamHandler(visible)
    last_resort.setLevel(logging.WARNING)  # what logging.lastResort shows
    handlers = [h for h in _stream_handlers() if _writes_to_fd2(h.stream)]
    streams = [h.setStream(console) for h in handlers]
    sys.stderr, warnings.showwarning, logging.lastResort = raw, show_warning, last_resort

    def undo() -> None:
        for handler, stream in zip(handlers, streams):
            if handler.stream is console:
                handler.setStream(stream)
        if sys.stderr is raw:
            sys.stderr = previous_stderr
        if warnings.showwarning is show_warning:
            warnings.showwarning = previous_show
        if logging.lastResort is last_resort:
            logging.lastResort = previous_last_resort
        for stream in (visible, console):
            stream.flush()

    return undo


def _stop_capture(saved: int, raw: _CapturedStderr, undo) -> None:
    raw.release()
    _flush_c_stdio()
    os.dup2(saved, 2)
    undo()


def _writes_to_fd2(stream) -> bool:
    """A plain file object on fd 2 (not, say, rich's proxy, which reports fd 2 but prints through its console)."""
    if not isinstance(stream, (io.TextIOWrapper, io.BufferedWriter, io.FileIO)):
        return False
    try:
        return stream.fileno() == 2
    except (OSError, ValueError):
        return False


def _stream_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger()] + [
        logger for logger in list(logging.Logger.manager.loggerDict.values()) if isinstance(logger, logging.Logger)
    ]
    return [
        handler
        for logger in loggers
        for handler in list(logger.handlers)
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


def _flush_c_stdio() -> None:
    """Native code may hold buffered output in C's stdio; it belongs to the capture, so flush it first."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (some platforms): nothing buffered to lose
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
