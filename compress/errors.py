"""Errors a user can cause and fix; the command line prints them as one line."""


class CompressError(Exception):
    """A user-facing error: bad path, unknown plugin, bad option, bad data."""


class UnknownPluginError(CompressError, KeyError):
    def __init__(self, kind: str, name: str, available: list[str]):
        self.kind, self.name, self.available = kind, name, available
        names = ", ".join(sorted(available)) or "none installed"
        super().__init__(f"unknown {kind} plugin {name!r}; available: {names}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class BadSampleError(CompressError):
    """A data sample that cannot be used; names the file and the reason."""

    def __init__(self, source: str, reason: str, detail: str = ""):
        self.source, self.reason, self.detail = source, reason, detail
        msg = f"{source}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(msg)
