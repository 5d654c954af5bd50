# recorded 2026-11-28 with github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4, engine 28.5.2+dfsg4
# exit code: 0
# note: examples/pipeline for linux/amd64 and linux/386 from $REGISTRY/sbuild/busybox-multi (scripts/setup-engine)
docker buildx build --progress=rawjson --no-cache --platform linux/amd64,linux/386 --build-arg BASE_IMAGE=127.0.0.1:5000/sbuild/busybox-multi:latest --target test --output type=cacheonly pipeline
