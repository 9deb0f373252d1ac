# Training and inference on NVIDIA GPUs: the NGC PyTorch container brings CUDA, cuDNN, NCCL and torch.
ARG FROM_IMAGE_NAME=nvcr.io/nvidia/pytorch:24.10-py3
FROM ${FROM_IMAGE_NAME}

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng festival festvox-us-slt-hts flite libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /workspace/tacotron2
COPY requirements.txt .
# keep the container's CUDA build of torch: install everything but the pinned CPU torch
RUN grep -v '^torch==' requirements.txt > /tmp/req.txt && pip install --no-cache-dir -r /tmp/req.txt
COPY . .
