# recorded 2026-11-28 with github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3
# exit code: 1
# note: examples/pipeline with tests/run.sh replaced by one that exits 4
docker buildx build --progress=rawjson --target test pipeline 
