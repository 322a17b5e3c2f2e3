"""Scaffolding for serving a model over HTTP (chapter 3, lab 03_03): run an app in a
process of its own, wait until it is healthy, stop it and prove it is gone; run a
coroutine from a notebook; a test server whose timing and concurrency are known.

Never a lab's answer: the app (validation, pre- and post-processing, batching) and the
load client are the learner's. Checked against fastapi 0.165.0, uvicorn 0.54.0 and
httpx 0.28.1 (requirements.txt) by running them:

* ``uvicorn.run`` stops on SIGTERM: it stops accepting connections, lets the open ones
  finish (at most ``timeout_graceful_shutdown`` seconds), runs the app's lifespan
  shutdown, and re-raises the signal, so the process ends with -15 even if threads
  are left. A process whose lifespan shutdown hangs (it awaits a task that never
  ends) does not exit: :meth:`Service.stop` says so and kills it.
* The app factory travels to the child process by value with cloudpickle, so a
  function defined in a notebook can be served. Pickle runs code when it loads: that is
  acceptable here only because both ends are this course's own processes on one
  machine (the serving page explains why a model file must never be a pickle).
* FastAPI reads a handler's annotations (``request: Request``) to decide what to pass
  it. Under ``from __future__ import annotations`` they are strings, resolved in the
  function's globals; a function that cloudpickle copied by value carries only the
  globals its code uses, so ``"Request"`` no longer resolves and FastAPI answers 422
  ("field required: query.request"). This module, and any script whose app is
  served from ``__main__``, therefore does without that import.
* Jupyter's kernel already runs an event loop, so ``asyncio.run`` fails in a cell;
  :func:`run` runs a coroutine to completion in a thread with a loop of its own.
"""


import argparse
import asyncio
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "BadRequest",
    "ServiceError",
    "Service",
    "free_port",
    "run",
    "paced_app",
]

HOST = "127.0.0.1"


class BadRequest(Exception):
    """A request the service refuses: ``status`` is the HTTP status to answer with
    (4xx), ``message`` says what was wrong, for the JSON error body."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status, self.message = int(status), str(message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class ServiceError(RuntimeError):
    """The service process did not start, or did not stop; the message carries the
    end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def run(coroutine) -> Any:
    """Run ``coroutine`` to completion on a fresh event loop in a worker thread and
    return its result (works inside Jupyter, whose own loop is already running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


_STUB = re.compile(r"^NotImplementedError: (lab\d\d_\d\d: .*)$", re.M)


class Service:
    """``factory(*args, **kwargs)`` → an ASGI app, served by uvicorn in a child
    process on 127.0.0.1 at a free port. Use as a context manager::

        with Service(make_app, model_path) as service:
            httpx.get(service.url + "/health")

    ``start`` returns once ``GET /health`` answers 200 (or raises ServiceError with
    the child's log; a stub's NotImplementedError is raised as itself). ``stop``
    sends SIGTERM, waits ``stop_timeout`` seconds, then kills; ``stopped_cleanly``
    and ``stop_outcome`` say which happened, ``exit_code`` what the process returned
    (uvicorn re-raises the SIGTERM after its graceful shutdown: -15 on POSIX).
    """

    def __init__(
        self,
        factory: Callable,
        *args: Any,
        startup_timeout: float = 30.0,
        stop_timeout: float = 8.0,
        graceful_timeout: float = 3.0,
        **kwargs: Any,
    ):
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.startup_timeout, self.stop_timeout = startup_timeout, stop_timeout
        self.graceful_timeout = graceful_timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.stop_outcome: str | None = None
        self.exit_code: int | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="m2m_service_"))
        self._log_path = self._dir / "service.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self, last: int = 4000) -> str:
        """The last ``last`` characters the service wrote to stdout and stderr."""
        try:
            return self._log_path.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "Service":
        import cloudpickle
        import httpx

        payload = self._dir / "factory.pkl"
        payload.write_bytes(cloudpickle.dumps((self.factory, self.args, self.kwargs)))
        self.port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "model2metal.serving", str(payload),
                 "--port", str(self.port),
                 "--graceful-timeout", str(self.graceful_timeout)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.alive():
                self._raise_start_failure("exited while starting "
                                          f"(exit code {self.process.returncode})")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        self._raise_start_failure(
            f"did not answer GET /health with 200 within {self.startup_timeout:.0f} s")

    def _raise_start_failure(self, what: str):
        log = self.log()
        stub = _STUB.search(log)
        if stub:
            raise NotImplementedError(stub.group(1))
        raise ServiceError(f"the service {what}. The end of its log:\n{log[-1500:]}")

    def stop(self) -> bool:
        """SIGTERM, wait, kill if needed; True when the process exited by itself.

        ``stop_outcome`` then says what happened: ``"exited"`` (within
        ``stop_timeout`` of the SIGTERM), ``"killed"`` (it did not, so it was killed)
        or ``"had died"`` (it was gone before the SIGTERM).
        """
        if self.process is None:
            return True
        if self.stop_outcome is None:
            if self.process.poll() is not None:
                self.stop_outcome = "had died"
            else:
                if os.name == "nt":  # pragma: no cover - no SIGTERM on Windows
                    self.process.terminate()
                else:
                    self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(self.stop_timeout)
                    self.stop_outcome = "exited"
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    self.stop_outcome = "killed"
        self.exit_code = self.process.returncode
        return self.stopped_cleanly

    @property
    def stopped_cleanly(self) -> bool | None:
        """True when the process exited by itself on SIGTERM; None before a stop."""
        return None if self.stop_outcome is None else self.stop_outcome == "exited"

    def port_released(self) -> bool:
        return self.port is not None and not _port_in_use(self.port)

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def paced_app(delays=(0.01,), fail_every: int = 0):
    """A test server with known behaviour, for checking a load client.

    The k-th ``POST /predict`` (counting from 1 in order of arrival) takes
    ``delays[(k - 1) % len(delays)]`` seconds (an ``asyncio.sleep``: requests overlap)
    and answers ``{"labels": [0, ...]}``, one label per image sent — or, when
    ``fail_every`` divides k, answers 503 with a JSON error. ``GET /stats`` reports
    ``requests``, ``failed``, ``images`` and ``max_in_flight`` (the most requests it
    was serving at once). A number for ``delays`` means that delay for every request.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    delays = (delays,) if isinstance(delays, (int, float)) else tuple(delays)
    app = FastAPI()
    state = {"requests": 0, "failed": 0, "images": 0, "in_flight": 0,
             "max_in_flight": 0}

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        state["requests"] += 1
        k = state["requests"]
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            body = await request.json()
            n = len(body.get("images", [])) if isinstance(body, dict) else 0
            state["images"] += n
            await asyncio.sleep(delays[(k - 1) % len(delays)])
            if fail_every and k % fail_every == 0:
                state["failed"] += 1
                return JSONResponse({"error": "scripted failure"}, status_code=503)
            return {"labels": [0] * n}
        finally:
            state["in_flight"] -= 1

    @app.get("/stats")
    async def stats():
        return {k: v for k, v in state.items() if k != "in_flight"}

    return app


def _main(argv: list[str] | None = None) -> None:
    import cloudpickle
    import uvicorn

    parser = argparse.ArgumentParser(description="serve a pickled app factory")
    parser.add_argument("payload")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--graceful-timeout", type=float, default=3.0)
    options = parser.parse_args(argv)
    factory, args, kwargs = cloudpickle.loads(Path(options.payload).read_bytes())
    app = factory(*args, **kwargs)
    uvicorn.run(app, host=HOST, port=options.port, log_level="warning",
                timeout_graceful_shutdown=options.graceful_timeout)


if __name__ == "__main__":
    _main()
