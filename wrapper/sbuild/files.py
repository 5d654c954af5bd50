"""Writing sbuild's output files: whole or not at all."""

from __future__ import annotations

import os


def write_atomic(path: str, text: str) -> None:
    """Write a whole file or nothing (a temp file renamed over it). Special files such as /dev/stdout
    are written to directly: renaming over them would replace the device."""
    import stat

    try:
        regular = stat.S_ISREG(os.stat(path).st_mode) and not os.path.islink(path)
    except FileNotFoundError:
        regular = True
    if not regular:
        with open(path, "w") as f:
            f.write(text)
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.sbuild-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


DOWNLOAD_LIMIT = 10 << 20  # a Dockerfile, not a data set


def download(url: str, path: str) -> None:
    """Fetch `url` into `path` (a Dockerfile given as -f URL), or fail as buildx would (exit 1)."""
    import urllib.request

    from .errors import BuildxError

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            data = r.read(DOWNLOAD_LIMIT + 1)
    except (OSError, ValueError) as e:
        raise BuildxError(f"failed to read dockerfile from {url}: {e}") from None
    if len(data) > DOWNLOAD_LIMIT:
        raise BuildxError(f"failed to read dockerfile from {url}: larger than {DOWNLOAD_LIMIT >> 20} MiB")
    with open(path, "wb") as f:
        f.write(data)
