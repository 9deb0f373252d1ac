"""The speech server (serve.py, serving.py): answers, batching that changes nobody's audio, bad input as 4xx JSON."""
import io
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf
import torch
import uvicorn

import serve
from common.checkpoint import save_training_checkpoint
from serving import Batcher, Limits, QueueFull, Speaker, make_app
from synthesis import make_phrases
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import TextFrontend

from .browser import evaluate, find_chromium, page_errors, page_session
from .conftest import TINY_TACOTRON2, checkout_after_demo, readme_block

fastapi_testclient = pytest.importorskip("fastapi.testclient", reason="fastapi is not installed (requirements.txt)")
CONFIG = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 12, "gate_threshold": 2.0}
TEXTS = ["Hello there.", "A second, longer sentence for the server.", "Third.", "And a fourth one to batch."]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("server") / "t2.pt")
    torch.manual_seed(0)
    save_training_checkpoint(path, model=Tacotron2(**CONFIG), model_name="Tacotron2", config=CONFIG, epoch=0,
                             iteration=0, train_args={"text_frontend": "characters"})
    return path


def make_speaker(checkpoint: str, *flags: str) -> Speaker:
    return serve.build_speaker(serve.parse_args(["--tacotron2", checkpoint, "--deterministic",
                                                 "--griffin-lim-iters", "2", *flags]))


@pytest.fixture(scope="module")
def client(checkpoint):
    speaker = make_speaker(checkpoint, "--max-wait-ms", "300", "--max-chars", "200")
    with fastapi_testclient.TestClient(make_app(speaker)) as c:
        yield c, speaker
    speaker.close()


def wav(response) -> torch.Tensor:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    data, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050 and data.ndim == 1
    return torch.from_numpy(data)


def test_health_and_info_say_what_is_served(client, checkpoint):
    c, _ = client
    assert c.get("/health").json() == {"status": "ok"}
    info = c.get("/info").json()
    assert info["tacotron2"] == checkpoint and info["text_frontend"] == "characters"
    assert info["vocoder"] == "griffin-lim" and info["audio"]["sampling_rate"] == 22050
    assert info["precision"] == "FP32" and info["limits"]["max_chars"] == 200


def test_a_text_comes_back_as_a_wav(client):
    c, _ = client
    audio = wav(c.post("/synthesize", json={"text": "Hello from the server.", "format": "wav"}))
    assert audio.numel() == 12 * 256 and audio.abs().max() > 0.5


def test_concurrent_requests_are_batched_and_each_answer_is_the_text_alone(client):
    """Requests arriving together go through the decoder as one batch; each answer equals the same text
    synthesised alone (Tacotron 2's batch invariance)."""
    c, speaker = client
    alone = [wav(c.post("/synthesize", json={"text": t})) for t in TEXTS]
    before = len(speaker.batcher.batch_sizes)
    answers = [None] * len(TEXTS)
    start = threading.Barrier(len(TEXTS))

    def ask(i: int) -> None:
        start.wait()
        answers[i] = c.post("/synthesize", json={"text": TEXTS[i]})
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(TEXTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(speaker.batcher.batch_sizes[before:]) > 1  # some of them shared a batch
    for got, expected in zip(answers, alone):
        assert torch.allclose(wav(got), expected, atol=1e-4)


@pytest.mark.parametrize("body, headers, status, message", [
    ('{"text": ""}', {"Content-Type": "application/json"}, 400, "text is empty"),
    ('{"text": "' + "a" * 201 + '"}', {"Content-Type": "application/json"}, 413, "at most 200"),
    ('{"text": "unclosed', {"Content-Type": "application/json"}, 400, "not valid JSON"),
    ('{"words": "hi"}', {"Content-Type": "application/json"}, 400, "string field"),
    ('{"text": "hi", "speed": 2}', {"Content-Type": "application/json"}, 400, "unknown field"),
    ('{"text": "hi", "format": "mp3"}', {"Content-Type": "application/json"}, 400, "writes wav"),
    ('{"text": "hi", "vocoder": "waveglow"}', {"Content-Type": "application/json"}, 400, "this server runs"),
    ('{"text": "hi", "sigma": 0.5}', {"Content-Type": "application/json"}, 400, "are WaveGlow's"),
    ('{"text": "hi", "sigma": "high"}', {"Content-Type": "application/json"}, 400, "must be a number"),
    ("text=hi", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send JSON"),
])
def test_bad_input_is_a_4xx_with_a_json_message(client, body, headers, status, message):
    c, _ = client
    response = c.post("/synthesize", content=body, headers=headers)
    assert response.status_code == status and message in response.json()["error"]


def test_a_full_queue_is_503_with_retry_after(checkpoint):
    speaker = make_speaker(checkpoint, "--max-queue", "0")
    with fastapi_testclient.TestClient(make_app(speaker)) as c:
        response = c.post("/synthesize", json={"text": "Anyone there?"})
    speaker.close()
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]


def test_the_batcher_gathers_within_its_wait_and_never_beyond_its_batch():
    """Six one-phrase requests queued before the worker starts, batches of at most four: 4 + 2."""
    calls = []

    class Synth:
        def __call__(self, phrases):
            calls.append(len(phrases))
            return {"audio": [torch.full((3,), float(p.index)) for p in phrases],
                    "mels": torch.zeros(len(phrases), 2, 4), "mel_lengths": torch.full((len(phrases),), 4)}
    batcher = Batcher(Synth(), Limits(max_batch=4, max_wait_ms=50, max_queue=6), start=False)
    phrases = make_phrases([f"line {i}" for i in range(6)], TextFrontend(), source="t")
    futures = [batcher.submit([p]) for p in phrases]
    with pytest.raises(QueueFull):
        batcher.submit(phrases[:1])
    batcher._thread.start()
    results = [f.result(timeout=10) for f in futures]
    batcher.close()
    assert calls == [4, 2] and [float(r[0].audio[0]) for r in results] == [0, 1, 2, 3, 4, 5]


def test_the_server_binds_to_localhost_unless_told_and_checks_its_limits(checkpoint):
    assert serve.parse_args(["--tacotron2", checkpoint]).host == "127.0.0.1"
    with pytest.raises(SystemExit):
        serve.parse_args(["--tacotron2", checkpoint, "--max-batch", "0"])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (bash scripts/setup.sh installs it)")
def test_the_readmes_start_command_and_curl_examples_work(tmp_path):
    """The README's serve command and curl lines, verbatim but for a free port instead of 8000, in a folder laid out
    as a checkout after the demo (a small model at the demo's checkpoint path), on a real uvicorn server."""
    checkout_after_demo(tmp_path, "characters")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start, examples = readme_block("bash", "python serve.py"), readme_block("bash", "curl -s -X POST")
    # exec: the shell becomes the server, so that terminate() stops the server and not only its shell
    command = "exec " + start.strip().replace("python ", f"{sys.executable} ", 1) + f" --port {port}"
    server = subprocess.Popen(command, shell=True, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        run = subprocess.run(examples.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), shell=True, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):  # nothing left listening
        s.connect(("127.0.0.1", port))
    assert run.returncode == 0, run.stderr
    assert '{"status":"ok"}' in run.stdout and '"text_frontend":"characters"' in run.stdout
    data, rate = sf.read(str(tmp_path / "hello.wav"))
    assert rate == 22050 and data.size == 12 * 256


def test_a_request_cancelled_before_its_batch_costs_no_synthesis():
    """What the server does for a client that went away: its queued phrases are dropped, not synthesised."""
    calls = []

    class Synth:
        def __call__(self, phrases):
            calls.append([p.text for p in phrases])
            return {"audio": [torch.zeros(3) for _ in phrases], "mels": torch.zeros(len(phrases), 2, 4),
                    "mel_lengths": torch.full((len(phrases),), 4)}
    batcher = Batcher(Synth(), Limits(max_batch=4, max_wait_ms=10), start=False)
    gone, kept = (batcher.submit(make_phrases([t], TextFrontend(), source="t")) for t in ("gone", "kept"))
    assert gone.cancel()
    batcher._thread.start()
    assert len(kept.result(timeout=10)) == 1
    batcher.close()
    assert calls == [["kept"]]


def test_a_failed_batch_answers_its_requests_with_the_error_and_the_worker_goes_on():
    class Synth:
        calls = 0

        def __call__(self, phrases):
            Synth.calls += 1
            if Synth.calls == 1:
                raise RuntimeError("out of memory")
            return {"audio": [torch.zeros(3) for _ in phrases], "mels": torch.zeros(len(phrases), 2, 4),
                    "mel_lengths": torch.full((len(phrases),), 4)}
    batcher = Batcher(Synth(), Limits(max_batch=1, max_wait_ms=0))
    first = batcher.submit(make_phrases(["one"], TextFrontend(), source="t"))
    with pytest.raises(RuntimeError, match="out of memory"):
        first.result(timeout=10)
    assert len(batcher.submit(make_phrases(["two"], TextFrontend(), source="t")).result(timeout=10)) == 1
    batcher.close()


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (bash scripts/setup.sh installs Debian's chromium)")
def test_the_page_speaks_typed_text_in_chromium(checkpoint):
    """The page at /, in headless Chromium on a real server: type, press Speak, the audio and the mel appear."""
    speaker = make_speaker(checkpoint)
    config = uvicorn.Config(make_app(speaker), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with page_session(f"http://127.0.0.1:{port}/") as (pipe, session):
            done = evaluate(pipe, session, """
new Promise(resolve => {
  document.getElementById("text").value = "Typed into the page.";
  document.getElementById("speak").click();
  const audio = document.getElementById("audio"), mel = document.getElementById("mel");
  const deadline = Date.now() + 60000;
  const poll = () => {
    if ((audio.readyState >= 1 && mel.complete && mel.naturalWidth > 0) || Date.now() > deadline) {
      resolve({duration: audio.duration, width: mel.naturalWidth,
               status: document.getElementById("status").textContent});
    } else { setTimeout(poll, 100); }
  };
  poll();
})""", timeout=90)
            errors = page_errors(pipe, session)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        speaker.close()
    assert errors == []
    assert abs(done["duration"] - 12 * 256 / 22050) < 0.01 and done["width"] > 100
    assert done["status"].endswith("s of speech")


def test_the_stream_sends_each_sentence_as_it_is_made(client):
    """POST /synthesize/stream: a wav header at once, then each sentence's samples, which are those of the sentence
    said alone (with the pause between), so a player starts before the paragraph is done."""
    c, speaker = client
    sentences = ["The first sentence is here.", "A second one follows!", "Third?"]
    alone = [wav(c.post("/synthesize", json={"text": s})) for s in sentences]
    with c.stream("POST", "/synthesize/stream", json={"text": "  ".join(sentences)}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        chunks = list(response.iter_bytes())
    data = b"".join(chunks)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    rate = int.from_bytes(data[24:28], "little")
    samples = torch.from_numpy(np.frombuffer(data[44:], dtype="<i2").astype(np.float32) / 32767)
    pause = torch.zeros(int(0.15 * rate))
    expected = torch.cat([alone[0], pause, alone[1], pause, alone[2]])
    assert rate == 22050 and samples.numel() == expected.numel()
    assert (samples - expected).abs().max() <= 2 / 32767
    response = c.post("/synthesize/stream", json={"text": ""})
    assert response.status_code == 400 and "empty" in response.json()["error"]


def test_requests_share_a_batch_only_with_the_same_vocoder_settings():
    seen = []

    class Vocoder:
        sigma, denoising_strength = 0.6, 0.01

    class Synth:
        vocoder = Vocoder()

        def __call__(self, phrases):
            seen.append((len(phrases), self.vocoder.sigma))
            return {"audio": [torch.zeros(3) for _ in phrases], "mels": torch.zeros(len(phrases), 2, 4),
                    "mel_lengths": torch.full((len(phrases),), 4)}
    batcher = Batcher(Synth(), Limits(max_batch=8, max_wait_ms=20), start=False)
    phrases = make_phrases(["one", "two", "three"], TextFrontend(), source="t")
    futures = [batcher.submit([p], {"sigma": sigma}) for p, sigma in zip(phrases, (0.0, 0.0, 0.9))]
    batcher._thread.start()
    for f in futures:
        f.result(timeout=10)
    batcher.close()
    assert seen == [(2, 0.0), (1, 0.9)]


def test_a_waveglow_server_takes_sigma_and_denoiser_strength_per_request(tmp_path):
    from waveglow.model import WaveGlow
    from .conftest import TINY_WAVEGLOW
    t2 = str(tmp_path / "t2.pt")
    wg = str(tmp_path / "wg.pt")
    torch.manual_seed(0)
    save_training_checkpoint(t2, model=Tacotron2(**CONFIG), model_name="Tacotron2", config=CONFIG, epoch=0,
                             iteration=0, train_args={"text_frontend": "characters"})
    wg_config = {**TINY_WAVEGLOW, "n_mel_channels": 80}
    save_training_checkpoint(wg, model=WaveGlow(**wg_config), model_name="WaveGlow", config=wg_config, epoch=0,
                             iteration=0)
    speaker = serve.build_speaker(serve.parse_args(["--tacotron2", t2, "--waveglow", wg, "--deterministic"]))
    with fastapi_testclient.TestClient(make_app(speaker)) as c:
        quiet = [wav(c.post("/synthesize", json={"text": "Hello.", "sigma": 0.0, "denoising_strength": 0.0}))
                 for _ in range(2)]
        noisy = wav(c.post("/synthesize", json={"text": "Hello.", "sigma": 0.6}))
        refused = c.post("/synthesize", json={"text": "Hello.", "sigma": 5})
    speaker.close()
    assert torch.equal(quiet[0], quiet[1]) and not torch.allclose(quiet[0], noisy, atol=1e-3)
    assert refused.status_code == 400 and "expected 0 to 2" in refused.json()["error"]
