"""Open a local page in headless Chromium and report what went wrong, over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3 and 4; no extra Python package)."""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Tuple

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Resolves to the names of every <img> and <audio> that did not load, once each has loaded or failed.
_CHECK_MEDIA = """
new Promise(resolve => {
  const deadline = Date.now() + 15000;
  const poll = () => {
    const imgs = [...document.images], audios = [...document.querySelectorAll('audio')];
    const imgDone = imgs.every(i => i.complete), audioDone = audios.every(a => a.error || a.readyState >= 1);
    if ((imgDone && audioDone) || Date.now() > deadline) {
      resolve({images: imgs.length, audios: audios.length,
               broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))
                 .concat(audios.filter(a => a.error || a.readyState < 1).map(a => a.getAttribute('src')))});
    } else { setTimeout(poll, 100); }
  };
  poll();
})
"""


def find_chromium() -> Optional[str]:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.write_fd, self.read_fd = proc, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: List[Dict] = []

    def _read_message(self, deadline: float) -> Dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: Optional[Dict] = None, session: Optional[str] = None,
             timeout: float = 30.0) -> Dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> Dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event


@contextlib.contextmanager
def page_session(url: str, chromium: Optional[str] = None) -> Iterator[Tuple["_Pipe", str]]:
    """Headless Chromium with `url` loaded: (pipe, session) for DevTools calls; every event is kept in pipe.events."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds() -> None:  # the pipe's ends as descriptors 3 and 4 (by way of spare numbers: they may be 3 or 4)
        os.dup2(to_browser_r, 1000)
        os.dup2(from_browser_w, 1001)
        os.dup2(1000, 3)
        os.dup2(1001, 4)

    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [chromium, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}",
             "about:blank"],
            preexec_fn=child_fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(proc, to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.call("Page.navigate", {"url": url}, session=session)
            pipe.wait_for("Page.loadEventFired")
            yield pipe, session
            try:
                pipe.call("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError):
                pass
        finally:
            os.close(to_browser_w)
            os.close(from_browser_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def evaluate(pipe: "_Pipe", session: str, expression: str, timeout: float = 30.0):
    """The value of a JavaScript expression on the page (a promise awaited)."""
    return pipe.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                     session=session, timeout=timeout)["result"].get("value")


def page_errors(pipe: "_Pipe", session: str) -> List[str]:
    """Console errors, exceptions and failed loads seen so far."""
    pipe.call("Runtime.evaluate", {"expression": "0"}, session=session)  # flush pending events
    errors = []
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in pipe.events
            if e.get("method") == "Network.requestWillBeSent"}
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed" and not (
                params.get("canceled") or params.get("errorText") == "net::ERR_ABORTED"):
            # (a media element cancels its request once it has what preload asks for: not an error;
            # a file that is not there is `broken` in check_page and ERR_FILE_NOT_FOUND here)
            errors.append(f"failed to load {urls.get(params.get('requestId'), '?')}: {params.get('errorText')}")
    return errors


def check_page(path: str, chromium: Optional[str] = None) -> Dict[str, object]:
    """Load the file in headless Chromium: {'errors': console errors, exceptions and failed loads,
    'broken': <img>/<audio> sources that did not load, 'images': n, 'audios': n}."""
    with page_session("file://" + os.path.abspath(path), chromium) as (pipe, session):
        media = evaluate(pipe, session, _CHECK_MEDIA)
        return {"errors": page_errors(pipe, session), **media}
