"""Errors that reach users: each names the file (and row) and the problem."""


class EmoflowError(Exception):
    """Base class for errors shown to users without a traceback."""


class ConfigError(EmoflowError):
    """The configuration does not validate."""


class ManifestError(EmoflowError):
    """The manifest does not validate; ``problems`` lists every problem found."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        shown = self.problems[:50]
        more = len(self.problems) - len(shown)
        lines = [f"{self.path}: {len(self.problems)} problem(s) in the manifest:"]
        lines += [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


class MediaError(EmoflowError):
    """A media file cannot be read (names the file and the cause)."""
