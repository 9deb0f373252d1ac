"""Training support: distributed processes, AMP, the optimizer step, samplers, resumable checkpoints, RNG states,
preemption, the data checks before the first step, host memory, one run per output folder."""
