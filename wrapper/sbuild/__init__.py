"""sbuild: docker buildx build, drop-in, with stage selection, per-stage reports, cache and retries."""

from __future__ import annotations

from ._tuple import TYPE_CHECKING  # not typing's: typing costs ~10 ms on every build's start-up

__version__ = "0.1.0"
__all__ = ["__version__", "classify_failure"]

if TYPE_CHECKING:
    from .retry import classify_failure


def __getattr__(name: str) -> object:
    # Lazy: `sbuild` is imported on every build's start-up, the classifier only when a build fails.
    if name == "classify_failure":
        from .retry import classify_failure

        return classify_failure
    raise AttributeError(name)
