"""Distances between two log-mel spectrograms (n_mel, T), for any model that makes or vocodes mels.

MCD-DTW: the mel cepstral distortion formula, (10 / ln 10) sqrt(2 sum (a - b)^2), between two log-mels after
dynamic time warping, on 12 cepstra from the orthonormal DCT of the 80-band natural-log mel, c0 dropped. It is
one definition for every row, so rows compare with each other; it is NOT the dB MCD of published TTS papers
(4-8 dB against natural speech, from SPTK's mel-cepstral analysis): the orthonormal DCT scales each coefficient
by about sqrt(2 x 80) = 12.6 against the conventional cepstrum, and a mel filterbank is not a mel-cepstral
envelope. Our figures run ~10-80, and only their order means anything;
contrast: mean over frames of the spread (std) over mel bands, relative to the teacher's: an averaged,
blurred mel has little spread (a model that hums scores ~0.7, speech ~1.0).
"""
import math

import numpy as np
from scipy.fft import dct


def mel_cepstra(log_mel: np.ndarray, n_coeffs: int = 13) -> np.ndarray:
    """(n_mel, T) natural-log mel -> (T, n_coeffs - 1) cepstra, c0 (energy) dropped."""
    return dct(log_mel.T, type=2, norm="ortho", axis=1)[:, 1:n_coeffs]


def mcd_dtw(log_mel_a: np.ndarray, log_mel_b: np.ndarray, n_coeffs: int = 13) -> float:
    """Mel cepstral distortion in dB after aligning the two sequences with DTW."""
    from librosa.sequence import dtw

    a, b = mel_cepstra(log_mel_a, n_coeffs), mel_cepstra(log_mel_b, n_coeffs)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # (T_a, T_b) euclidean
    _, path = dtw(C=cost)
    diffs = a[path[:, 0]] - b[path[:, 1]]
    return float((10.0 / math.log(10.0)) * np.mean(np.sqrt(2.0 * (diffs ** 2).sum(-1))))


def spectral_contrast(log_mel: np.ndarray) -> float:
    """Mean over frames of the standard deviation over mel bands; log_mel (n_mel, T)."""
    return float(np.mean(np.std(log_mel, axis=0)))


def contrast_ratio(log_mel: np.ndarray, teacher: np.ndarray) -> float:
    """spectral_contrast of a mel relative to the teacher's (1.0: as much spectral detail)."""
    return spectral_contrast(log_mel) / max(spectral_contrast(teacher), 1e-8)
