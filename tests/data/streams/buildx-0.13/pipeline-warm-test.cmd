# recorded 2026-11-28 with github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3
# exit code: 0
docker buildx build --progress=rawjson --target test pipeline 
