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
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 900 and 1 <= args.max_requests <= 10000):
        parser.error("--clients 1..64, --seconds up to 900, --max-requests up to 10000")
    try:
        texts = [line.strip() for line in read_text_lines(args.phrases) if line.strip()]
    except (OSError, ValueError) as e:
        parser.error(f"--phrases: {e}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, os.path.join(REPO, "serve.py"), "--tacotron2", args.tacotron2,
                               "--vocoder", args.vocoder, "--port", str(port), "--host", "127.0.0.1", "--deterministic",
                               *args.server_args.split()], cwd=REPO)
    try:
        with httpx.Client(timeout=300) as client:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("error: the server did not start")
                time.sleep(0.5)
            # each text alone, one after the other: what every answer under load must equal (the server runs
            # with --deterministic, so the same text gives the same audio whatever shares its batch)
            alone = {text: sf.read(io.BytesIO(client.post(f"{url}/synthesize", json={"text": text}).content))[0]
                     for text in texts}
        latencies: List[float] = []
        differing, largest = [0], [0.0]
        audio_seconds: List[float] = []
        errors: Dict[str, int] = {}
        lock = threading.Lock()
        end = [0.0]
        sent = [0]

        def run(worker: int) -> None:
            with httpx.Client(timeout=300) as client:
                i = worker
                while time.monotonic() < end[0]:
                    with lock:
                        if sent[0] >= args.max_requests:
                            return
                        sent[0] += 1
                    t0 = time.perf_counter()
                    try:
                        r = client.post(f"{url}/synthesize", json={"text": texts[i % len(texts)]})
                        ok = r.status_code == 200 and r.headers.get("content-type") == "audio/wav"
                        key = "" if ok else f"HTTP {r.status_code}"
                    except httpx.HTTPError as e:
                        ok, key = False, type(e).__name__
                    elapsed = time.perf_counter() - t0
                    with lock:
                        if ok:
                            latencies.append(elapsed)
                            data, rate = sf.read(io.BytesIO(r.content))
                            audio_seconds.append(len(data) / rate)
                            expected = alone[texts[i % len(texts)]]
                            difference = np.abs(data - expected).max() if data.shape == expected.shape else 1.0
                            largest[0] = max(largest[0], difference)
                            if difference > TOLERANCE:
                                differing[0] += 1
                        else:
                            errors[key] = errors.get(key, 0) + 1
                    i += args.clients
        def load(seconds: float) -> float:
            start = time.monotonic()
            end[0] = start + seconds
            threads = [threading.Thread(target=run, args=(w,)) for w in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.monotonic() - start
        # warm-up under the same load (batches of every size the load makes), not counted; then memory is measured
        load(min(15.0, args.seconds / 4))
        latencies.clear(), audio_seconds.clear(), errors.clear()
        differing[0], largest[0] = 0, 0.0
        sent[0] = 0
        with httpx.Client(timeout=60) as client:
            before = resident_mib(server.pid)
            batches_before = client.get(f"{url}/info").json()["batches"]
        wall, memory = 0.0, []
        for _ in range(max(1, min(args.rounds, 10))):
            sent[0] = 0
            wall += load(args.seconds)
            memory.append(resident_mib(server.pid))
        with httpx.Client(timeout=60) as client:
            info = client.get(f"{url}/info").json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    print(f"| vocoder | clients | seconds | requests | errors | p50 s | p95 s | p99 s | audio s / s | batches (largest) "
          f"| memory before / after each round MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {args.vocoder} | {args.clients} | {wall:.0f} | {len(latencies)} | {sum(errors.values())} "
          f"| {np.percentile(lat, 50):.2f} | {np.percentile(lat, 95):.2f} | {np.percentile(lat, 99):.2f} "
          f"| {sum(audio_seconds) / wall:.2f} | {info['batches'] - batches_before} ({info['largest_batch']}) "
          f"| {before:.0f} / {' / '.join(f'{m:.0f}' for m in memory)} |")
    print(f"answers equal to the same text synthesised alone (within {TOLERANCE:g} of full scale): "
          f"{len(latencies) - differing[0]} of {len(latencies)}; the largest difference {largest[0]:.1e}")
    if errors:
        print(f"errors: {errors}")
    return 1 if errors or differing[0] else 0


if __name__ == "__main__":
    sys.exit(main())
