# recorded 2026-11-28 with github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3, engine 26.1.5+dfsg1
# exit code: 0
# note: examples/pipeline after a source change; $REG: a fresh repository on the local registry, filled by the same build before the change
docker buildx build --progress=rawjson --target deploy --cache-from type=registry,ref=$REG:cache --cache-to type=registry,ref=$REG:cache,mode=max --push -t $REG:2 pushctx
