"""The speech server under load: N concurrent clients for M seconds against serve.py on 127.0.0.1.

    python -m scripts.load_test --tacotron2 CKPT [--vocoder hifigan] [--clients 4] [--seconds 60]

Starts `serve.py` on a free local port (only 127.0.0.1; nothing else is ever addressed), waits for /health, then
runs --clients client threads (httpx), each sending the sentences of --phrases one after the other until --seconds
have passed (and at most --max-requests requests in all), --rounds times. Prints a table: requests, errors (any answer but a wav),
latency p50/p95/p99, seconds of audio served per second of wall time, the batches the server formed (/info), and
the server's resident memory before the load (after a warm-up under the same load, not counted) and after it,
and how many answers equal the same text synthesised alone (the server runs with --deterministic). Stops the server at the end.
"""
import argparse
import io
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List

import numpy as np
import soundfile as sf

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.load_test ...")

from common.filelist import read_text_lines  # noqa: E402
from common.flag_types import COUNT, POSITIVE  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# batched and alone, the decoder's products run at other batch sizes, whose kernels round differently: the mels
# differ by ~1e-5 and the audio by ~1e-4 of full scale (a few 16-bit steps, -80 dB); another text would differ by
# the whole signal
TOLERANCE = 1e-3


def resident_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.join(REPO, "serve.py"), "--tacotron2", args.tacotron2,
                             "--vocoder", args.vocoder, "--port", str(port), "--host", "127.0.0.1", "--deterministic",
                             *args.server_args.split()], cwd=REPO)


def wait_until_up(client, url: str, server: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.get(f"{url}/health").status_code == 200:
                return
        except Exception:  # not listening yet
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("error: the server did not start")
        time.sleep(0.5)


class Load:
    """Clients posting the phrases in turn until a deadline or a request count, each answer checked against the
    same text synthesised alone (the server runs with --deterministic, so the same text gives the same audio
    whatever shares its batch)."""

    def __init__(self, url: str, texts: List[str], alone: Dict[str, np.ndarray], clients: int,
                 max_requests: int) -> None:
        self.url, self.texts, self.alone, self.clients, self.max_requests = url, texts, alone, clients, max_requests
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.latencies: List[float] = []
        self.audio_seconds: List[float] = []
        self.errors: Dict[str, int] = {}
        self.differing, self.largest, self.sent, self.end = 0, 0.0, 0, 0.0

    def run(self, seconds: float) -> float:
        """All clients for `seconds` (or until the request count); the wall time."""
        start = time.monotonic()
        self.end, self.sent = start + seconds, 0
        threads = [threading.Thread(target=self._client, args=(w,)) for w in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - start

    def _client(self, worker: int) -> None:
        import httpx
        with httpx.Client(timeout=300) as client:
            i = worker
            while time.monotonic() < self.end:
                with self.lock:
                    if self.sent >= self.max_requests:
                        return
                    self.sent += 1
                text = self.texts[i % len(self.texts)]
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{self.url}/synthesize", json={"text": text})
                    ok = r.status_code == 200 and r.headers.get("content-type") == "audio/wav"
                    key = "" if ok else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    ok, key = False, type(e).__name__
                self._record(text, ok, key, time.perf_counter() - t0, r.content if ok else b"")
                i += self.clients

    def _record(self, text: str, ok: bool, key: str, elapsed: float, content: bytes) -> None:
        with self.lock:
            if not ok:
                self.errors[key] = self.errors.get(key, 0) + 1
                return
            self.latencies.append(elapsed)
            data, rate = sf.read(io.BytesIO(content))
            self.audio_seconds.append(len(data) / rate)
            expected = self.alone[text]
            difference = np.abs(data - expected).max() if data.shape == expected.shape else 1.0
            self.largest = max(self.largest, difference)
            self.differing += difference > TOLERANCE


def report(args: argparse.Namespace, load: Load, wall: float, batches: int, largest_batch: int, before: float,
           memory: List[float]) -> None:
    lat = np.array(load.latencies) if load.latencies else np.array([float("nan")])
    print(f"| vocoder | clients | seconds | requests | errors | p50 s | p95 s | p99 s | audio s / s | batches (largest) "
          f"| memory before / after each round MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {args.vocoder} | {args.clients} | {wall:.0f} | {len(load.latencies)} | {sum(load.errors.values())} "
          f"| {np.percentile(lat, 50):.2f} | {np.percentile(lat, 95):.2f} | {np.percentile(lat, 99):.2f} "
          f"| {sum(load.audio_seconds) / wall:.2f} | {batches} ({largest_batch}) "
          f"| {before:.0f} / {' / '.join(f'{m:.0f}' for m in memory)} |")
    print(f"answers equal to the same text synthesised alone (within {TOLERANCE:g} of full scale): "
          f"{len(load.latencies) - load.differing} of {len(load.latencies)}; the largest difference "
          f"{load.largest:.1e}")
    if load.errors:
        print(f"errors: {load.errors}")


def main(argv=None) -> int:
    import httpx
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", required=True)
    parser.add_argument("--vocoder", default="griffin-lim")
    parser.add_argument("--clients", type=COUNT, default=4)
    parser.add_argument("--seconds", type=POSITIVE, default=60)
    parser.add_argument("--max-requests", type=COUNT, default=1000)
    parser.add_argument("--rounds", type=COUNT, default=1,
                        help="repeat the load this many times, the memory read after each (a leak keeps growing)")
    parser.add_argument("--phrases", default=os.path.join(REPO, "phrases", "demo.txt"))
    parser.add_argument("--server-args", default="", help="more serve.py flags, e.g. '--max-batch 4'")
    args = parser.parse_args(argv)
    if not (args.clients <= 64 and args.seconds <= 900 and args.max_requests <= 10000):
        parser.error("--clients 1..64, --seconds up to 900, --max-requests up to 10000")
    try:
        texts = [line.strip() for line in read_text_lines(args.phrases) if line.strip()]
    except (OSError, ValueError) as e:
        parser.error(f"--phrases: {e}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args, port)
    try:
        with httpx.Client(timeout=300) as client:
            wait_until_up(client, url, server)
            alone = {text: sf.read(io.BytesIO(client.post(f"{url}/synthesize", json={"text": text}).content))[0]
                     for text in texts}  # what every answer under load must equal
        load = Load(url, texts, alone, args.clients, args.max_requests)
        load.run(min(15.0, args.seconds / 4))  # warm-up under the same load (batches of every size), not counted
        load.reset()
        with httpx.Client(timeout=60) as client:
            before = resident_mib(server.pid)
            batches_before = client.get(f"{url}/info").json()["batches"]
        wall, memory = 0.0, []
        for _ in range(min(args.rounds, 10)):
            wall += load.run(args.seconds)
            memory.append(resident_mib(server.pid))
        with httpx.Client(timeout=60) as client:
            info = client.get(f"{url}/info").json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    report(args, load, wall, info["batches"] - batches_before, info["largest_batch"], before, memory)
    return 1 if load.errors or load.differing else 0


if __name__ == "__main__":
    sys.exit(main())
