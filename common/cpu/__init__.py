"""CPU kernels and what the CPU can run: feature probes, small-batch and int8 products, the fused LSTM step, LSTM
weight gradients once per sequence."""
