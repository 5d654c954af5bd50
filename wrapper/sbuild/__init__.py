"""sbuild: docker buildx build, drop-in, with stage selection, per-stage reports, cache and retries."""

from __future__ import annotations

__version__ = "0.1.0"
