#!/usr/bin/env bash
# The Docker engine as a peer: N `docker run -d --net NET` on one user-defined bridge, then N
# `docker rm -f`, each a CLI process asking the daemon, as a user types them. Runs on the host (it needs
# the daemon) with the image bench/peers/setup.sh makes from busybox-static.
# Usage: docker.sh [N]. Uses network ctbench (Docker picks its subnet), containers ctbench-d*.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
IMAGE=ctnet-bench/busybox
command -v docker >/dev/null || skip "docker is not installed (bench/peers/setup.sh installs Debian's docker.io)"
docker info >/dev/null 2>&1 || skip "no Docker engine answers here (bench/peers/setup.sh starts one)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || skip "image $IMAGE is missing (bench/peers/setup.sh makes it)"

NET=ctbench
! docker network inspect "$NET" >/dev/null 2>&1 || in_use "Docker network $NET"
[ -z "$(docker ps -aq --filter name='^ctbench-d[0-9]+$')" ] || in_use "a container ctbench-d*"
network_made=0 made=0
cleanup() {
  local i
  for ((i = 1; i <= made; i++)); do docker rm -f "ctbench-d$i" >/dev/null 2>&1 || :; done
  [ "$network_made" = 0 ] || docker network rm "$NET" >/dev/null 2>&1 || :
}
trap cleanup EXIT

docker network create "$NET" >/dev/null && network_made=1
now; t0=$NOW
for ((i = 1; i <= N; i++)); do made=$i; docker run -d --net "$NET" --name "ctbench-d$i" "$IMAGE" sleep 1000000 >/dev/null; done
now; t1=$NOW
for ((i = 1; i <= N; i++)); do docker rm -f "ctbench-d$i" >/dev/null; done
made=0
now; t2=$NOW

report docker-run $((t1 - t0)) $((t2 - t1))
