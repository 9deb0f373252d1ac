#!/usr/bin/env bash
# Build the training/inference image (NGC PyTorch base; see Dockerfile), as the seed's Quick Start does.
# Usage: bash scripts/docker/build.sh [IMAGE_NAME]   (FROM_IMAGE_NAME=... to choose another NGC release)
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${1:-tacotron2}"
docker build . --network=host --rm -t "$IMAGE" \
    ${FROM_IMAGE_NAME:+--build-arg FROM_IMAGE_NAME="$FROM_IMAGE_NAME"}
