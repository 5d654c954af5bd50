"""Render the progress stream as buildx's `--progress=plain` does (CI logs, non-terminals)."""

from __future__ import annotations

from collections.abc import Callable

from ._tuple import TYPE_CHECKING
from .mask import Masker
from .progress import BuildModel, Finished, LogLines, Started, Status, Step, TextLine, Update, Warning_

if TYPE_CHECKING:
    from typing import TextIO

FAILURE_TAIL = 20  # lines of a failed step's output shown again at the end


def human_size(n: int) -> str:
    """docker's units.HumanSize (decimal, 3 significant digits): 233B, 2.05kB, 1.23MB."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def failure_box(step: Step, mask: Callable[[str], str]) -> list[str]:
    """What buildx shows again for a failed step: its name and the last lines of its output."""
    return ["------", f" > {mask(step.name)}:", *(mask(ln) for ln in list(step.logs)[-FAILURE_TAIL:]), "------"]


class PlainRenderer:
    def __init__(self, out: TextIO, masker: Masker) -> None:
        self.out = out
        self.mask = masker.text
        self._numbers: dict[str, int] = {}
        self._current: str | None = None
        self._done: set[str] = set()
        self._pending_text: list[str] = []  # buildx's own closing text, printed after the stream

    def _header(self, step: Step) -> str:
        num = self._numbers.get(step.digest)
        if num is None:
            num = self._numbers[step.digest] = len(self._numbers) + 1
        if self._current != step.digest:
            if self._current is not None:
                self.out.write("\n")
            self.out.write(f"#{num} {self.mask(step.name)}\n")
            self._current = step.digest
        return f"#{num}"

    def update(self, u: Update) -> None:
        if isinstance(u, Started):
            self._header(u.step)
        elif isinstance(u, LogLines):
            tag = self._header(u.step)
            prefix = f"{tag} {u.at:.3f} "
            self.out.write("".join(f"{prefix}{self.mask(line)}\n" for line in u.lines))
        elif isinstance(u, Status):
            if u.done:
                tag = self._header(u.step)
                size = ""
                if u.total:
                    size = f" {human_size(u.current)} / {human_size(u.total)}"
                elif u.current:
                    size = f" {human_size(u.current)}"
                self.out.write(f"{tag} {self.mask(u.id)}{size} done\n")
        elif isinstance(u, Finished):
            obj = u.step
            if obj.digest in self._done and not obj.error:
                return  # BuildKit re-ran an internal vertex; buildx reports it once
            self._done.add(obj.digest)
            tag = self._header(obj)
            if obj.error:
                word = "CANCELED" if "context canceled" in obj.error else f"ERROR: {self.mask(obj.error)}"
                self.out.write(f"{tag} {word}\n")
            elif obj.cached:
                self.out.write(f"{tag} CACHED\n")
            else:
                self.out.write(f"{tag} DONE {obj.duration:.1f}s\n")
        elif isinstance(u, Warning_):
            self._current = None
            self.out.write(f"\nWARNING: {self.mask(u.short)}\n")
        elif isinstance(u, TextLine):
            self._pending_text.append(u.line)
        self.out.flush()

    def close(self) -> None:
        pass

    def finish(self, model: BuildModel) -> None:
        """After the stream: the failing steps' output (as buildx prints it), then buildx's own text."""
        if self._current is not None:
            self.out.write("\n")
        for step in model.failed_steps():
            self.out.write("\n".join(failure_box(step, self.mask)) + "\n")
        for line in self._pending_text:
            self.out.write(self.mask(line) + "\n")
        self.out.flush()
