"""CPU kernels and what the CPU can run: feature probes, small-batch and int8 products, the fused LSTM step, LSTM
weight gradients once per sequence, dropout's mask, the allocator setting that keeps freed memory, 1-D
convolutions by Winograd's algorithm.

Where a new kernel goes: one that more than one model uses (a product, a recurrence, dropout) here, one that only
a model uses in that model's package (WaveGlow's layouts: waveglow/cpu_layout.py; Tacotron 2's fused decoder:
tacotron2/fast_inference.py). Neither imports training: what autocast computes in is common.precision's.
Where it is chosen: at one named point per model, from what `cpu_features` says the CPU has (`cpu_layout.choose`
for WaveGlow, `FastDecoder`'s dtype for Tacotron 2's decoder, `vocoders.vocoder_dtypes` and, layer by layer,
`hifigan.fast_inference.adopt_winograd` for HiFi-GAN; training's kernels by rules rather than timings, so that
every process of a run computes alike: Winograd's algorithm for WaveGlow's and Tacotron 2's convolutions from
`cpu_features.winograd_trains_faster` (through `winograd.trains_by_winograd`), the teacher-forced LSTM products'
library from `cpu_features.onednn_trains_faster`), never by a test of the CPU inside the kernel, so that tests can
emulate the other CPU kinds.
"""
