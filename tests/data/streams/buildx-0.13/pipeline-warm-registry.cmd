# recorded 2026-11-28 with github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3
# exit code: 0
# note: sbuild passes buildx's stream on with --progress=rawjson; underneath it is one `docker buildx bake` with a target per stage, cache-only outputs, registry cache import/export per stage. Shows bake announcing copies of shared steps that never start.
sbuild warm --cache-repo 127.0.0.1:5000/sbuild-dev/pipeline --progress=rawjson examples/pipeline
