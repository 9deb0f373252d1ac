"""HiFi-GAN V1's generator (inference only): the published pretrained weights as a vocoder for Tacotron 2's mels."""
