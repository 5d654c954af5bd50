# recorded 2026-11-28 with github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3, engine 26.1.5+dfsg1
# exit code: 1
# note: FROM an image behind integration/faultproxy.py answering 503 to every request ($PROXY); see scripts/record-streams
docker buildx build --pull --progress=rawjson ctx
