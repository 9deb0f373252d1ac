"""Code shared by both models: layers, audio, STFT, checkpoints, logging and launching."""
