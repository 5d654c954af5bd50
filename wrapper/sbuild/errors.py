"""sbuild's typed errors. Each carries its exit code and a one-line message that says what to do."""

from __future__ import annotations


class SbuildError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, evidence: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence  # what docker printed, shown with SBUILD_LOG=debug


class UsageError(SbuildError):
    """Bad command line or input files: exit 2, as click and getopt do."""

    exit_code = 2


class BuildxUsageError(SbuildError):
    """What buildx's own flag parser rejects (an unknown flag, `--pull=maybe`): buildx's words and exit code."""

    exit_code = 125


class BuildxError(SbuildError):
    """What buildx refuses after parsing its flags (an unknown progress mode): its words, exit 1."""

    exit_code = 1


class DockerNotFound(SbuildError):
    exit_code = 127


class BuildxMissing(SbuildError):
    exit_code = 127


class DaemonUnreachable(SbuildError):
    exit_code = 1


class DockerfileError(UsageError):
    """A Dockerfile BuildKit would reject (with the line, when BuildKit names one)."""

    def __init__(self, message: str, *, line: int | None = None, file: str = "Dockerfile") -> None:
        super().__init__(message)
        self.line = line
        self.file = file
