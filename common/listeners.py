"""Two listeners we did not write, for what a person would hear in a wav.

- What a speech recogniser understands: CMU's pocketsphinx with the en-US acoustic model, language model and
  dictionary its wheel ships (nothing downloaded), its transcript scored against the words spoken as word and
  character error rates (jiwer). A formant robot voice or a hum is not understood; a clear human-like voice is.
- How natural it sounds, as a number: DNSMOS, Microsoft's no-reference MOS predictor (P.835: SIG the speech,
  BAK the background, OVRL overall, 1-5), run from the ONNX models inside the `speechmos` wheel.

Both judge 16 kHz audio; every wav is resampled and peak-normalised to 0.9 first, so that rows differing only in
loudness score alike. ~0.2 s (recogniser) + ~0.35 s (DNSMOS) a 5-second clip on one CPU core: light enough for
the end of a run, not for every validation (the demo runs them once, on the held-out sentences and checkpoints).
"""
import re
from typing import Dict

import numpy as np
from scipy.signal import resample_poly

RATE = 16000
# How tables name a signal's scores (the mel's against the teacher's, then the listeners'): key, column, format
SCORE_COLUMNS = (("mcd_dtw", "MCD-DTW", "{:.1f}"), ("contrast", "contrast", "{:.2f}"), ("wer", "recogniser WER", "{:.2f}"),
                 ("cer", "CER", "{:.2f}"), ("ovrl", "DNSMOS OVRL", "{:.2f}"), ("sig", "SIG", "{:.2f}"),
                 ("bak", "BAK", "{:.2f}"))


def to_16k(wav: np.ndarray, sampling_rate: int) -> np.ndarray:
    """float32 (L,) at 16 kHz, peak 0.9 (silence stays silence)."""
    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    if sampling_rate != RATE:
        g = np.gcd(sampling_rate, RATE)
        wav = resample_poly(wav, RATE // g, sampling_rate // g)
    peak = np.abs(wav).max() if wav.size else 0.0
    return (wav * (0.9 / peak) if peak > 1e-6 else wav).astype(np.float32)


def normalize_words(text: str) -> str:
    """Lower case, letters, digits and apostrophes only: how transcripts and texts are compared."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())


def _decoder():
    """A new recogniser for each utterance: one kept across utterances carries its noise and cepstral-mean
    estimates from one to the next, so a wav's transcript depended on what it had heard before (3 of 6 held-out
    wavs changed after a burst of noise). ~0.3 s to load."""
    from pocketsphinx import Decoder  # its default model: the en-US one inside the wheel
    return Decoder(loglevel="ERROR")


def transcribe(wav: np.ndarray, sampling_rate: int) -> str:
    """What pocketsphinx heard, normalised (see normalize_words); the same for a wav whatever came before it."""
    audio = to_16k(wav, sampling_rate)
    decoder = _decoder()
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return normalize_words(hyp.hypstr if hyp is not None else "")


def error_rates(heard: str, said: str) -> Dict[str, float]:
    """{"wer", "cer"} of a transcript against the words spoken (both normalised); 1.0 each for nothing heard."""
    import jiwer
    ref, hyp = normalize_words(said), normalize_words(heard)
    if not ref:
        raise ValueError("no words to score against")
    if not hyp:
        return {"wer": 1.0, "cer": 1.0}
    return {"wer": float(jiwer.wer(ref, hyp)), "cer": float(jiwer.cer(ref, hyp))}


def dnsmos(wav: np.ndarray, sampling_rate: int) -> Dict[str, float]:
    """{"ovrl", "sig", "bak"}: DNSMOS P.835 scores (1-5) of the clip (repeated to the model's 9 s window)."""
    from speechmos import dnsmos as model
    scores = model.run(to_16k(wav, sampling_rate), RATE)
    return {"ovrl": float(scores["ovrl_mos"]), "sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"])}


def listen(wav: np.ndarray, sampling_rate: int, said: str) -> Dict[str, object]:
    """Both listeners on one wav: what the recogniser heard, its WER/CER against `said`, and DNSMOS."""
    heard = transcribe(wav, sampling_rate)
    return {"heard": heard, **error_rates(heard, said), **dnsmos(wav, sampling_rate)}
