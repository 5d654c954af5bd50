# recorded 2026-11-28 with github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4, engine 28.5.2+dfsg4
# exit code: 0
# note: examples/pipeline after a source change; $REG: a fresh repository on the local registry, filled by the same build before the change
docker buildx build --progress=rawjson --target deploy --cache-from type=registry,ref=$REG:cache --cache-to type=registry,ref=$REG:cache,mode=max --push -t $REG:2 pushctx
