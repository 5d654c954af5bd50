"""The history's copy in the registry: CI runners start blank, but they share the cache repository.

A successful build with `--cache-repo REPO` pushes its record as a small OCI artifact (an image manifest
with `artifactType`, the empty config, one layer: the record's JSON) to `REPO:<tag>`, one tag per project,
stage set and branch. The tag starts with "_", which no cache tag can: those are `<stage>-<branch>` and a
stage name starts with a lower-case letter (BuildKit: ^[a-z][a-z0-9-_.]*$). A hash of the exact project,
stage set and branch ends it, so two of them never share a tag however tag_safe folds their names.

Registry failures are RecordError (a warning for the build); transient ones are retried with the build's
classifier, twice, briefly.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from .cache import tag_safe

ARTIFACT_TYPE = "application/vnd.sbuild.history.v1+json"
RECORD_MEDIA_TYPE = "application/vnd.sbuild.history.record.v1+json"
LISTINGS_MEDIA_TYPE = "application/vnd.sbuild.history.listings.v1+json+gzip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
TAG_PREFIX = "_sbuild-history-"
RETRY_WAITS = (0.5, 2.0)


class RecordError(Exception):
    pass


def record_tag(project: str, stages: str, branch: str) -> str:
    h = hashlib.sha256(f"{project}\0{stages}\0{branch}".encode()).hexdigest()[:12]
    readable = tag_safe(f"{stages.replace(',', '+')}.{branch}")[: 128 - len(TAG_PREFIX) - 13].rstrip("-.")
    return f"{TAG_PREFIX}{readable}-{h}"


def _retrying(call: Any) -> Any:
    from .registry import RegistryError
    from .retry import classify_failure

    for wait in (*RETRY_WAITS, None):
        try:
            return call()
        except RegistryError as e:
            if wait is None or not classify_failure(str(e), None).transient:
                raise RecordError(str(e)) from None
            time.sleep(wait)
    return None  # pragma: no cover


def manifest_for(record_blob: bytes, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2},
        "layers": [{"mediaType": RECORD_MEDIA_TYPE, "digest": "sha256:" + hashlib.sha256(record_blob).hexdigest(),
                    "size": len(record_blob), "annotations": {"org.opencontainers.image.title": "record.json"}}],
        # What `cache ls`-like readers need without fetching the record: the registry keeps no age, commit
        # or original branch name.
        "annotations": {"org.opencontainers.image.created": record["finished_at"],
                        "dev.sbuild.project": record["project"]["id"],
                        "dev.sbuild.branch": record.get("branch") or "",
                        "dev.sbuild.stages": ",".join(record["stages"]),
                        "dev.sbuild.commit": record.get("commit") or "",
                        "dev.sbuild.id": record["id"]},
    }


def push(cache_repo: str, record: dict[str, Any], listings: dict[str, dict[str, str]] | None = None) -> str:
    """Push the record (and, as a second layer, gzipped, the context listings it refers to, so that another
    runner can name the files that changed); returns the tag it went to."""
    import gzip

    from .registry import repository

    client, repo = repository(cache_repo)
    blob = json.dumps(record, separators=(",", ":")).encode()
    tag = record_tag(record["project"]["id"], ",".join(record["stages"]), record.get("branch") or "")
    doc = manifest_for(blob, record)
    extra = gzip.compress(json.dumps(listings, separators=(",", ":")).encode(), mtime=0) if listings else None
    if extra is not None:
        doc["layers"].append({"mediaType": LISTINGS_MEDIA_TYPE,
                              "digest": "sha256:" + hashlib.sha256(extra).hexdigest(), "size": len(extra),
                              "annotations": {"org.opencontainers.image.title": "listings.json.gz"}})
    manifest = json.dumps(doc, separators=(",", ":")).encode()

    def send() -> None:
        client.put_blob(repo, b"{}")
        client.put_blob(repo, blob)
        if extra is not None:
            client.put_blob(repo, extra)
        client.put_manifest(repo, tag, MANIFEST_MEDIA_TYPE, manifest)

    _retrying(send)
    return tag


def pull(cache_repo: str, project: str, stages: str, branch: str) -> dict[str, Any] | None:
    """The record last pushed for this project, stage set and branch (None: none there). Its context
    listings, when pushed with it, come as record["_listings"] (not part of the record)."""
    from .registry import repository

    client, repo = repository(cache_repo)
    tag = record_tag(project, stages, branch)
    got = _retrying(lambda: client.manifest(repo, tag))
    if got is None:
        return None
    try:
        layer = next(lay for lay in json.loads(got[1]).get("layers", []) if lay.get("mediaType") == RECORD_MEDIA_TYPE)
    except (StopIteration, ValueError, AttributeError):
        raise RecordError(f"{repo}:{tag} is not an sbuild history record") from None
    data = _retrying(lambda: client.blob(repo, layer["digest"]))
    if "sha256:" + hashlib.sha256(data).hexdigest() != layer["digest"]:
        raise RecordError(f"{repo}:{tag}: the record does not match its digest")
    try:
        record = json.loads(data)
    except ValueError:
        raise RecordError(f"{repo}:{tag}: the record is not JSON") from None
    if not isinstance(record, dict) or record.get("project", {}).get("id") != project:
        raise RecordError(f"{repo}:{tag}: a record of another project")
    extra = next((lay for lay in json.loads(got[1]).get("layers", []) if lay.get("mediaType") == LISTINGS_MEDIA_TYPE),
                 None)
    if extra is not None:
        import gzip

        try:
            raw = _retrying(lambda: client.blob(repo, extra["digest"]))
            if "sha256:" + hashlib.sha256(raw).hexdigest() == extra["digest"]:
                record["_listings"] = json.loads(gzip.decompress(raw))
        except (RecordError, ValueError, OSError):
            pass  # the record stands without them: changed files are then named by directory
    return record
