#!/usr/bin/env bash
# Builds the optoutd Docker image FROM scratch with a static binary.
# Usage: deploy/build-image.sh [TAG]   (default tag: optoutd:dev)
set -euo pipefail
tag=${1:-optoutd:dev}
top=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$top" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/optoutd" ./cmd/optoutd)
mkdir "$ctx/data"
DOCKER_BUILDKIT=0 docker build -q -f "$top/deploy/Dockerfile" -t "$tag" "$ctx" >/dev/null
echo "$tag"
