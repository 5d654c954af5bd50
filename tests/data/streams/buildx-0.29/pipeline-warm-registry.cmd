# recorded 2026-11-28 with github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4, engine 28.5.2+dfsg4
# exit code: 0
# note: sbuild passes buildx's stream on with --progress=rawjson; underneath it is one `docker buildx bake` with a target per stage, cache-only outputs, registry cache export per stage
sbuild warm --cache-repo 127.0.0.1:5000/sbuild-dev/rec-1795855773255755583 --progress=rawjson pipeline 
