"""sbuild: docker buildx build, drop-in, with stage selection, per-stage reports, cache and retries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "classify_failure"]

if TYPE_CHECKING:
    from .retry import classify_failure


def __getattr__(name: str) -> Any:
    # Lazy: `sbuild` is imported on every build's start-up, the classifier only when a build fails.
    if name == "classify_failure":
        from .retry import classify_failure

        return classify_failure
    raise AttributeError(name)
