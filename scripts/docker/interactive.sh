#!/usr/bin/env bash
# Start the image with every GPU and this folder (data, checkpoints, outputs) mounted at /workspace/tacotron2.
# Usage: bash scripts/docker/interactive.sh [IMAGE_NAME]
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${1:-tacotron2}"
docker run -it --rm --gpus all --ipc=host --shm-size=16g --ulimit memlock=-1 --ulimit stack=67108864 \
    -v "$PWD":/workspace/tacotron2 -w /workspace/tacotron2 "$IMAGE" bash
