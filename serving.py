"""Speech over HTTP as a library: requests batched through one Synthesizer, a FastAPI app (serve.py is the command).

    synth = build_synthesizer(t2, None, device, vocoder="hifigan")
    app = make_app(Speaker(synth, text_frontend(t2), Limits()))  # uvicorn.run(app, host="127.0.0.1", port=8000)

Requests that arrive within `max_wait_ms` of each other go through the decoder as one batch of at most `max_batch`
phrases; Tacotron 2 synthesises an item of a batch as it would alone (synthesis.Synthesizer), so batching changes
nobody's audio. One worker thread owns the models: torch already uses every core for one batch, and a second
batch at the same time would only share them.
"""
import asyncio
import base64
import dataclasses
import html
import io
import struct
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, AsyncIterator, Deque, Dict, List, NamedTuple, Optional, Tuple

import soundfile as sf
import torch

from common.checkpoint import model_card
from synthesis import InputError, Phrase, Synthesizer, join_pieces, make_phrases
from tacotron2.text.frontend import TextFrontend
from tacotron2.text.segment import split_sentences


class Limits(NamedTuple):
    max_chars: int = 500  # characters of one request's text
    max_batch: int = 8  # phrases decoded together
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for others
    max_queue: int = 64  # phrases waiting; beyond: 503 with Retry-After
    max_phrase_chars: int = 180  # longer texts are spoken in pieces (synthesis.split_text), joined
    pause: float = 0.15  # seconds of silence between the pieces


class QueueFull(RuntimeError):
    """More phrases are waiting than Limits.max_queue allows."""


class TooLong(InputError):
    """A text over Limits.max_chars."""


class Spoken(NamedTuple):
    """One phrase's answer: its waveform (L,) and its mel (n_mel, T_out)."""
    audio: torch.Tensor
    mel: torch.Tensor


class _Job(NamedTuple):
    phrases: List[Phrase]
    future: Future  # -> List[Spoken], one per phrase
    settings: Dict[str, float]  # the vocoder's per-request settings (WaveGlow's sigma, denoiser strength)


class Batcher:
    """Gathers phrases of concurrent requests into batches for one Synthesizer, on one worker thread."""

    def __init__(self, synth: Synthesizer, limits: Limits, start: bool = True) -> None:
        self.synth = synth
        self.limits = limits
        self._pending: Deque[_Job] = deque()
        self._waiting = 0  # phrases in self._pending
        self._lock = threading.Condition()
        self._closed = False
        self.batch_sizes: List[int] = []  # phrases per batch synthesised, in order (for /info and tests)
        self._thread = threading.Thread(target=self._run, name="synthesis", daemon=True)
        if start:
            self._thread.start()

    def submit(self, phrases: List[Phrase], settings: Optional[Dict[str, float]] = None) -> Future:
        """Queue one request's phrases, to be vocoded with `settings` (attributes of the vocoder; only requests
        with the same settings share a batch); its future gives their waveforms. QueueFull when over the limit."""
        future: Future = Future()
        with self._lock:
            if self._waiting + len(phrases) > self.limits.max_queue:
                raise QueueFull(f"{self._waiting} phrases are waiting (the limit is {self.limits.max_queue})")
            self._pending.append(_Job(phrases, future, dict(settings or {})))
            self._waiting += len(phrases)
            self._lock.notify()
        return future

    def _take_batch(self) -> List[_Job]:
        """Jobs for one batch: the first waiting one, and those arriving within max_wait_ms while they fit."""
        with self._lock:
            while not self._pending and not self._closed:
                self._lock.wait()
            if self._closed:
                return []
            deadline = time.monotonic() + self.limits.max_wait_ms / 1e3
            jobs = [self._pending.popleft()]
            size = len(jobs[0].phrases)
            while size < self.limits.max_batch:
                if self._pending:
                    following = self._pending[0]
                    if size + len(following.phrases) > self.limits.max_batch or following.settings != jobs[0].settings:
                        break
                    jobs.append(self._pending.popleft())
                    size += len(jobs[-1].phrases)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    break
            self._waiting -= size
            return jobs

    def _run(self) -> None:
        while True:
            jobs = [job for job in self._take_batch() if job.future.set_running_or_notify_cancel()]
            if not jobs:
                if self._closed:
                    return
                continue
            phrases = [p for job in jobs for p in job.phrases]
            try:
                for name, value in jobs[0].settings.items():
                    setattr(self.synth.vocoder, name, value)
                result = self.synth(phrases)
                spoken = [Spoken(wave, mel[:, :int(n)])
                          for wave, mel, n in zip(result["audio"], result["mels"], result["mel_lengths"])]
            except Exception as e:  # a failed batch answers its requests with the error; the worker goes on
                for job in jobs:
                    job.future.set_exception(e)
                continue
            self.batch_sizes.append(len(phrases))
            start = 0
            for job in jobs:
                job.future.set_result(spoken[start:start + len(job.phrases)])
                start += len(job.phrases)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=60)


def pcm16(audio: torch.Tensor) -> bytes:
    """(L,) float audio in [-1, 1] as little-endian 16-bit samples."""
    return (audio.clamp(-1, 1) * 32767).round().to(torch.int16).numpy().astype("<i2").tobytes()


def wav_header(sampling_rate: int) -> bytes:
    """A mono 16-bit PCM wav header whose RIFF and data sizes say 'unknown' (0xFFFFFFFF), for a stream."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sampling_rate, 2 * sampling_rate, 2, 16) +
            b"data" + struct.pack("<I", 0xFFFFFFFF))


def wav_bytes(audio: torch.Tensor, sampling_rate: int) -> bytes:
    """(L,) float audio in [-1, 1] as a 16-bit PCM wav file's bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, audio.clamp(-1, 1).numpy(), sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Speaker:
    """Text -> wav bytes through the front end and the batcher, with the limits checked (InputError, QueueFull)."""

    def __init__(self, synth: Synthesizer, frontend: TextFrontend, limits: Limits, start: bool = True) -> None:
        self.synth = synth
        self.frontend = frontend
        self.limits = limits
        self.batcher = Batcher(synth, limits, start)
        self.sampling_rate = synth.vocoder.audio.sampling_rate

    def _checked(self, text: str) -> str:
        """The text with its white space folded; InputError when empty, TooLong over the limit."""
        if not text.strip():
            raise InputError("text is empty")
        if len(text) > self.limits.max_chars:
            raise TooLong(f"text has {len(text)} characters; this server takes at most {self.limits.max_chars}")
        return " ".join(text.split())

    def phrases(self, text: str) -> List[Phrase]:
        return make_phrases([self._checked(text)], self.frontend, self.limits.max_phrase_chars, "text")

    def sentences(self, text: str) -> List[Phrase]:
        """The text as one phrase a sentence (longer sentences in pieces), for streaming."""
        return make_phrases(split_sentences(self._checked(text), self.limits.max_phrase_chars), self.frontend,
                            source="text")

    def settings(self, sigma: Optional[float] = None, denoising_strength: Optional[float] = None
                 ) -> Dict[str, float]:
        """A request's vocoder settings, the server's own where not given; InputError for settings its vocoder has
        not (sigma and the denoiser are WaveGlow's; a denoiser the server was started without cannot be asked for)."""
        vocoder = self.synth.vocoder
        if vocoder.name != "waveglow":
            if sigma is not None or denoising_strength is not None:
                raise InputError(f"sigma and denoising_strength are WaveGlow's; this server runs {vocoder.name!r}")
            return {}
        if sigma is not None and not 0 <= sigma <= 2:
            raise InputError(f"sigma {sigma}: expected 0 to 2 (WaveGlow's latent standard deviation)")
        if denoising_strength is not None and (not 0 <= denoising_strength <= 1 or
                                               (denoising_strength > 0 and vocoder.denoiser is None)):
            raise InputError(f"denoising_strength {denoising_strength}: expected 0 to 1, and above 0 only where the "
                             "server was started with a denoiser (-d above 0)")
        return {"sigma": vocoder.defaults["sigma"] if sigma is None else float(sigma),
                "denoising_strength": vocoder.defaults["denoising_strength"] if denoising_strength is None
                else float(denoising_strength)}

    def submit(self, text: str, settings: Optional[Dict[str, float]] = None) -> Future:
        """Queue a text (InputError, TooLong, QueueFull) with vocoder `settings` (see `settings`); the future gives
        its pieces (Spoken). Cancelled before the worker takes it, it costs nothing."""
        return self.batcher.submit(self.phrases(text), settings)

    def wav(self, pieces: List[Spoken]) -> bytes:
        audio = join_pieces([p.audio for p in pieces], int(self.limits.pause * self.sampling_rate))
        return wav_bytes(audio, self.sampling_rate)

    def speak(self, text: str, timeout: Optional[float] = None) -> bytes:
        return self.wav(self.submit(text).result(timeout))

    def info(self) -> Dict[str, Any]:
        """What /info says: the models, how text is read, the audio settings, the precision, the limits."""
        vocoder = self.synth.vocoder
        return {"tacotron2": model_card(self.synth.tacotron2).path, "text_frontend": self.frontend.kind,
                "text_cleaners": list(self.frontend.cleaners), "vocoder": vocoder.name,
                "vocoder_source": vocoder.source, "audio": dataclasses.asdict(vocoder.audio),
                "precision": self.synth.precision_label(), "device": self.synth.device.type,
                "limits": self.limits._asdict(), "batches": len(self.batcher.batch_sizes),
                "largest_batch": max(self.batcher.batch_sizes, default=0)}

    def close(self) -> None:
        self.batcher.close()


def mel_png(mel: torch.Tensor) -> bytes:
    """A picture of a mel (n_mel, T_out), as the page shows it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.imshow(mel.float().numpy(), origin="lower", aspect="auto", interpolation="none")
    ax.set(xlabel="frame", ylabel="mel channel")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Tacotron 2 speech server</title><link rel="icon" href="data:,">
<style>body{font-family:sans-serif;max-width:860px;margin:auto} textarea{width:100%}</style></head>
<body><h1>Tacotron 2</h1><p id="info">{{info}}</p>
<textarea id="text" rows="3">The museum closes at six, so we should hurry along.</textarea>
<p><button id="speak">Speak</button> <span id="status"></span></p>
<audio id="audio" controls></audio><br><img id="mel" alt="the mel spectrogram" width="800">
<script>
document.getElementById("speak").onclick = async () => {
  const status = document.getElementById("status");
  status.textContent = "synthesising...";
  const response = await fetch("/synthesize", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({text: document.getElementById("text").value, format: "json"})});
  const answer = await response.json();
  if (!response.ok) { status.textContent = "error: " + answer.error; return; }
  document.getElementById("audio").src = "data:audio/wav;base64," + answer.wav;
  document.getElementById("mel").src = "data:image/png;base64," + answer.mel_png;
  status.textContent = answer.seconds.toFixed(2) + " s of speech";
};
</script></body></html>
"""


def check_body(body: Any, vocoder_name: str) -> str:
    """What is wrong with a request's JSON for this server ('' when nothing)."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return "expected a JSON object with a string field \"text\""
    unknown = sorted(set(body) - {"text", "format", "vocoder", "sigma", "denoising_strength"})
    if unknown:
        return f"unknown field(s) {unknown}; this server takes text, format, vocoder, sigma, denoising_strength"
    for name in ("sigma", "denoising_strength"):
        if name in body and (isinstance(body[name], bool) or not isinstance(body[name], (int, float))):
            return f"{name} must be a number"
    if body.get("format", "wav") not in ("wav", "json"):
        return (f"format {body.get('format')!r}: this server writes wav (or json: the wav and a picture of the mel, "
                "base64)")
    vocoder = body.get("vocoder", vocoder_name)
    if vocoder != vocoder_name:
        return (f"vocoder {vocoder!r}: this server runs {vocoder_name!r} (start another with serve.py --vocoder for "
                "another)")
    return ""


def refusal_of(e: Exception) -> Tuple[int, str, Optional[Dict[str, str]]]:
    """(status, message, headers) answering a text the server will not take now."""
    if isinstance(e, TooLong):
        return 413, str(e), None
    if isinstance(e, QueueFull):
        return 503, f"busy: {e}; try again shortly", {"Retry-After": "1"}
    if isinstance(e, SystemExit):  # a phonemizer that is not installed names its package
        return 500, str(e.code), None
    return 400, str(e), None


async def finished_unless_gone(future: Future, request) -> bool:
    """Wait for a request's synthesis; a client that goes away before its batch starts costs none (False)."""
    waiting = asyncio.wrap_future(future)
    while not waiting.done():
        await asyncio.wait({waiting}, timeout=0.1)
        if not waiting.done() and await request.is_disconnected():
            future.cancel()
            return False
    return True


async def wav_chunks(speaker: Speaker, phrases: list, settings) -> AsyncIterator[bytes]:
    """A streamed wav: its header at once, then each sentence's samples as it is made, one at a time so that the
    first is heard first."""
    pause = torch.zeros(int(speaker.limits.pause * speaker.sampling_rate))
    yield wav_header(speaker.sampling_rate)
    for i, phrase in enumerate(phrases):
        future = speaker.batcher.submit([phrase], settings)
        try:
            (spoken,) = await asyncio.wrap_future(future)
        except asyncio.CancelledError:  # the client went away
            future.cancel()
            raise
        yield pcm16((torch.cat([pause, spoken.audio]) if i else spoken.audio).clamp(-1, 1))


def error(status: int, message: str, headers: Optional[Dict[str, str]] = None):
    """Every refusal: a JSON {"error": message}."""
    from fastapi.responses import JSONResponse
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def make_app(speaker: Speaker):
    """The FastAPI app: POST /synthesize, GET /health, GET /info, the page at /; every error a JSON {"error": ...}."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="Tacotron 2 speech server")

    @app.get("/health")
    def health() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> Dict[str, Any]:
        return speaker.info()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.replace("{{info}}", html.escape(f"{speaker.frontend.kind} text, {speaker.synth.vocoder.name}, "
                                                    f"{speaker.synth.vocoder.audio.sampling_rate} Hz"))

    add_synthesis_routes(app, speaker)
    return app


def add_synthesis_routes(app, speaker: Speaker) -> None:
    """POST /synthesize (a wav, or JSON with the mel's picture) and /synthesize/stream (sentence by sentence)."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    async def read_body(request: Request):
        """The request's JSON object, checked; or the JSONResponse that refuses it."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "send JSON: Content-Type: application/json, {\"text\": \"...\"}")
        try:
            body = await request.json()
        except ValueError as e:
            return error(400, f"the body is not valid JSON: {e}")
        problem = check_body(body, speaker.synth.vocoder.name)
        return error(400, problem) if problem else body

    def refusal(e: Exception) -> JSONResponse:
        return error(*refusal_of(e))

    @app.post("/synthesize")
    async def synthesize(request: Request):
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            settings = speaker.settings(body.get("sigma"), body.get("denoising_strength"))
            future = await run_in_threadpool(speaker.submit, body["text"], settings)  # the front end may phonemize
        except (InputError, QueueFull, SystemExit) as e:
            return refusal(e)
        if not await finished_unless_gone(future, request):
            return Response(status_code=499)
        try:
            pieces = future.result()
        except Exception as e:
            return error(500, f"synthesis failed: {type(e).__name__}: {e}")
        if body.get("format", "wav") == "json":
            picture = await run_in_threadpool(mel_png, torch.cat([p.mel for p in pieces], dim=1))
            return {"wav": base64.b64encode(speaker.wav(pieces)).decode(), "mel_png": base64.b64encode(picture).decode(),
                    "seconds": sum(p.audio.numel() for p in pieces) / speaker.sampling_rate}
        return Response(speaker.wav(pieces), media_type="audio/wav")

    @app.post("/synthesize/stream")
    async def synthesize_stream(request: Request):
        """The text sentence by sentence: a wav whose header comes at once and whose samples follow as each
        sentence is made (its length fields say 'unknown', as streamed wavs do)."""
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            settings = speaker.settings(body.get("sigma"), body.get("denoising_strength"))
            phrases = await run_in_threadpool(speaker.sentences, body["text"])
        except (InputError, SystemExit) as e:
            return refusal(e)
        return StreamingResponse(wav_chunks(speaker, phrases, settings), media_type="audio/wav")
