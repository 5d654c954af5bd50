# recorded 2026-11-28 with github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4, engine 28.5.2+dfsg4
# exit code: 0
docker buildx build --progress=rawjson --call=check --target test pipeline 
