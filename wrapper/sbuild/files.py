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
