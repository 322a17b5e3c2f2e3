"""Checks of lab 03_03 against wrong and alternative-correct implementations.

The service checks start real processes: the apps below are sent to them by value
(cloudpickle), so this module's functions are what those processes run.
"""

import asyncio
import json
import os
import re
import sys
import time
from contextlib import asynccontextmanager

import cloudpickle
import httpx
import numpy as np
import pytest
from check_helpers import boom, raises_cleanly, rejects
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from model2metal import onnxkit, serving
from model2metal.checks import lab03_03 as checks
from model2metal.models import PIXEL_MEAN, PIXEL_STD
from model2metal.serving import BadRequest

cloudpickle.register_pickle_by_value(sys.modules[__name__])

MAX_IMAGES, MAX_BODY = 64, 256 * 1024


# --- 1. parse_images -----------------------------------------------------------------


def parse(body, content_type, *, lenient_nan=False, lenient_bool=False,
          catch=(ValueError,), status_415=415, no_range=False, no_size=False):
    """A correct parser (by NumPy shape checks), with switches for known mistakes."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise BadRequest(status_415, "not JSON")
    if not no_size and len(body) > MAX_BODY:
        raise BadRequest(413, "too large")
    if not body:
        raise BadRequest(400, "empty")
    try:
        doc = json.loads(body)
    except catch:
        raise BadRequest(400, "not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not doc["images"]:
        raise BadRequest(422, "no images")
    if len(doc["images"]) > MAX_IMAGES:
        raise BadRequest(413, "too many")

    def number(v):
        return isinstance(v, (int, float)) and (lenient_bool or not isinstance(v, bool))

    flat = []
    for image in doc["images"]:
        if not isinstance(image, list) or len(image) != 8:
            raise BadRequest(422, "shape")
        for row in image:
            if not isinstance(row, list) or len(row) != 8 or not all(map(number, row)):
                raise BadRequest(422, "shape")
            flat.extend(row)
    x = np.array(flat, dtype=np.float32).reshape(-1, 8, 8)
    if not lenient_nan and not np.isfinite(x).all():
        raise BadRequest(422, "not finite")
    if not no_range and ((x < 0) | (x > 1)).any():
        raise BadRequest(422, "range")
    return x


def variant(**mistake):
    return lambda body, content_type: parse(body, content_type, **mistake)


def test_parse_images_accepts_a_correct_parser(capsys):
    checks.check_parse_images(parse, MAX_IMAGES, MAX_BODY)
    assert "passed (30 cases)" in capsys.readouterr().out


@pytest.mark.parametrize("impl, expect", [
    (variant(lenient_nan=True), r"a pixel NaN.*accepted.*json\.loads accepts"),
    (variant(lenient_bool=True), r"a pixel true.*True is an int"),
    (variant(no_range=True), r"a pixel 16.*\[0, 1\]"),
    (variant(status_415=400), r"no Content-Type.*answered 400; the contract says 415"),
    (variant(no_size=True), r"one byte over.*accepted a malformed.*len\(body\)"),
    (lambda body, ct: np.zeros((1, 8, 8), np.float32), r"32 of 64 values differ"),
    (lambda body, ct: parse(body, ct).astype(np.float64), r"dtype: expected float32"),
    (lambda body, ct: parse(body, ct).tolist(), r"expected a numpy.ndarray"),
])
def test_parse_images_rejects(impl, expect):
    rejects(checks.check_parse_images, impl, MAX_IMAGES, MAX_BODY, expect=expect)


def test_parse_images_an_error_that_escapes_would_be_a_500():
    # JSONDecodeError caught, UnicodeDecodeError not: the non-UTF-8 body escapes
    impl = variant(catch=(json.JSONDecodeError,))
    msg = raises_cleanly(checks.check_parse_images, impl, MAX_IMAGES, MAX_BODY,
                         expect=r"not UTF-8.*UnicodeDecodeError.*500")
    assert "BadRequest(status, message)" in msg


def test_parse_images_refusing_a_valid_request():
    def strict(body, content_type):
        if ";" in (content_type or ""):
            raise BadRequest(415, "no parameters")
        return parse(body, content_type)
    rejects(checks.check_parse_images, strict, MAX_IMAGES, MAX_BODY,
            expect=r"charset.*refused a valid request with 415")


def test_parse_images_empty_message():
    def silent(body, content_type):
        try:
            return parse(body, content_type)
        except BadRequest as refusal:
            raise BadRequest(refusal.status, " ") from None
    rejects(checks.check_parse_images, silent, MAX_IMAGES, MAX_BODY,
            expect=r"empty message")


# --- 2. predict_probabilities ---------------------------------------------------------


def probabilities(session, images, *, normalise=True, softmax_axis=1, shift=True):
    x = np.asarray(images, np.float32)
    if normalise:
        x = (x - PIXEL_MEAN) / PIXEL_STD
    logits = session.run(None, {"images": x.astype(np.float32).reshape(-1, 1, 8, 8)})[0]
    if softmax_axis is None:
        return logits
    z = logits - logits.max(axis=softmax_axis, keepdims=True) if shift else logits
    return np.exp(z) / np.exp(z).sum(axis=softmax_axis, keepdims=True)


def test_predict_probabilities_accepts_correct_versions():
    checks.check_predict_probabilities(probabilities)
    checks.check_predict_probabilities(  # without the max shift: also correct here
        lambda s, im: probabilities(s, im, shift=False))


@pytest.mark.parametrize("mistake, expect", [
    ({"normalise": False}, r"without the normalisation"),
    ({"softmax_axis": None}, r"these are the logits"),
    ({"softmax_axis": 0}, r"softmax over the wrong axis"),
])
def test_predict_probabilities_rejects(mistake, expect):
    rejects(checks.check_predict_probabilities,
            lambda s, im: probabilities(s, im, **mistake), expect=expect)


def test_predict_probabilities_in_place_and_raising():
    def in_place(session, images):
        images -= PIXEL_MEAN
        return probabilities(session, images + PIXEL_MEAN)
    rejects(checks.check_predict_probabilities, in_place,
            expect=r"changed its input `images`")
    raises_cleanly(checks.check_predict_probabilities, boom,
                   expect=r"ZeroDivisionError")


# --- 3. MicroBatcher ----------------------------------------------------------------


class Batcher:
    """A correct batcher of another design: window only, the model run on the event
    loop itself, requests split by a list of sizes."""

    def __init__(self, infer, max_batch=32, max_delay=0.0, *, split=False,
                 cap=True, forward_errors=True, cancel=True, batch=True):
        self.infer, self.max_batch, self.max_delay = infer, max_batch, max_delay
        self.split, self.cap, self.forward_errors = split, cap, forward_errors
        self.cancel, self.batch = cancel, batch

    async def start(self):
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self.work())

    async def submit(self, images):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((images, future))
        return await future

    async def stop(self):
        if self.cancel:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def work(self):
        pending = []
        while True:
            if not pending:
                pending.append(await self.queue.get())
            if self.batch:
                await asyncio.sleep(self.max_delay)
                while not self.queue.empty():
                    pending.append(self.queue.get_nowait())
            taken, size = [], 0
            while pending and (not self.cap or size + len(pending[0][0])
                               <= self.max_batch or not taken):
                item = pending.pop(0)
                taken.append(item)
                size += len(item[0])
            try:
                out = self.infer(np.concatenate([im for im, _ in taken]))
            except Exception as error:
                if self.forward_errors:
                    for _, f in taken:
                        f.set_exception(error)
                continue
            sizes = np.cumsum([len(im) for im, _ in taken])[:-1]
            parts = np.split(out, sizes)
            if self.split:
                parts = parts[::-1]
            for (_, f), part in zip(taken, parts):
                f.set_result(part)


def batcher(**mistake):
    return type("Wrong", (Batcher,), {
        "__init__": lambda self, infer, max_batch=32, max_delay=0.0:
        Batcher.__init__(self, infer, max_batch, max_delay, **mistake)})


def test_micro_batcher_accepts_another_correct_design(capsys):
    checks.check_micro_batcher(Batcher)
    assert "passed (5 cases)" in capsys.readouterr().out


@pytest.mark.parametrize("impl, expect", [
    (batcher(batch=False), r"48 concurrent.*called \d\d times for 48 requests"),
    (batcher(cap=False), r"48 concurrent.*batches of \[.*max_batch is 16"),
    (batcher(split=True), r"rows that belong to other images|got .*expected its"),
    (batcher(forward_errors=False), r"ValueError.*did not finish within"),
    (batcher(cancel=False), r"after stop\(\) 1 task\(s\) still run"),
])
def test_micro_batcher_rejects(impl, expect):
    rejects(checks.check_micro_batcher, impl, expect=expect)


def test_micro_batcher_needs_coroutines_and_a_class():
    class Sync(Batcher):
        def submit(self, images):
            return self.infer(images)
    rejects(checks.check_micro_batcher, Sync, expect=r"submit must be an async def")
    rejects(checks.check_micro_batcher, Batcher(None), expect=r"expected the class")


def test_micro_batcher_reports_a_raising_method():
    class Broken(Batcher):
        async def start(self):
            boom()
    raises_cleanly(checks.check_micro_batcher, Broken, expect=r"ZeroDivisionError")


# --- 4. the service ------------------------------------------------------------------


def app_factory(model_path, max_delay=None, *, accept_all=False, crash_500=False,
                die_on_large=False, linger=False):
    """A correct service of its own design, with switches for what goes wrong."""
    session = onnxkit.session(model_path, threads=1)
    state = {}

    @asynccontextmanager
    async def lifespan(app):
        if max_delay is not None:
            state["batcher"] = Batcher(lambda x: probabilities(session, x),
                                       max_delay=max_delay)
            await state["batcher"].start()
        worker = asyncio.create_task(asyncio.Event().wait())  # runs until cancelled
        yield
        if max_delay is not None:
            await state["batcher"].stop()
        if linger:  # awaits its worker without cancelling it: never returns
            await worker
        worker.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.body()
        if die_on_large and len(body) > 1_000_000:
            os._exit(3)
        try:
            if crash_500:
                images = np.asarray(json.loads(body)["images"], np.float32)
            else:
                images = parse(body, request.headers.get("content-type"))
        except BadRequest as refusal:
            if accept_all:
                images = np.zeros((1, 8, 8), np.float32)
            else:
                return JSONResponse({"error": refusal.message}, refusal.status)
        if max_delay is None:
            p = probabilities(session, images)
        else:
            p = await state["batcher"].submit(images)
        return {"labels": p.argmax(1).tolist(), "probabilities": p.tolist()}

    return app


def service(**mistake):
    def make_app(model_path, max_delay=None):
        return app_factory(model_path, max_delay, **mistake)
    return make_app


def test_service_accepts_a_correct_service(capsys):
    checks.check_service(service(), onnxkit.COURSE_ONNX)
    checks.check_service(service(), onnxkit.COURSE_ONNX, max_delay=0.001)
    out = capsys.readouterr().out
    assert "no batching; stopped cleanly" in out and "max_delay 0.001" in out


@pytest.mark.parametrize("mistake, expect", [
    ({"accept_all": True}, r"an empty body.*answered 200.*expected 400"),
    ({"crash_500": True}, r"an empty body.*answered 500.*a 500 means the handler"),
    ({"die_on_large": True}, r"8 MB body.*the service process has died \(exit code 3\)"),
])
def test_service_rejects_bad_answers(mistake, expect):
    rejects(checks.check_service, service(**mistake), onnxkit.COURSE_ONNX,
            expect=expect)


def test_service_rejects_one_that_does_not_exit(monkeypatch):
    monkeypatch.setattr(checks, "STOP_TIMEOUT_S", 2.0)
    msg = rejects(checks.check_service, service(linger=True), onnxkit.COURSE_ONNX,
                  expect=r"still running 2 s after SIGTERM; the check killed it")
    assert "cancel" in msg


def in_service_process() -> bool:
    main = sys.modules["__main__"]
    return getattr(getattr(main, "__spec__", None), "name", "") == "model2metal.serving"


def test_service_that_cannot_start_or_is_no_app():
    def broken(model_path, max_delay=None):
        if in_service_process():
            raise RuntimeError("the model file is missing")
        return app_factory(model_path, max_delay)
    rejects(checks.check_service, broken, onnxkit.COURSE_ONNX,
            expect=r"starting the service.*RuntimeError: the model file is missing")
    rejects(checks.check_service, lambda path, max_delay=None: {"app": 1},
            onnxkit.COURSE_ONNX, expect=r"make_app's result: expected")


def test_a_stub_passes_through():
    def stub(model_path, max_delay=None):
        raise NotImplementedError("lab03_03: build the app")
    with pytest.raises(NotImplementedError, match="lab03_03"):
        checks.check_service(stub, onnxkit.COURSE_ONNX)
    # a stub that only fails in the service's own process comes back as itself
    def stub_in_child(model_path):
        if in_service_process():
            raise NotImplementedError("lab03_03: build the app")
        return app_factory(model_path)
    with pytest.raises(NotImplementedError, match="lab03_03: build the app"):
        serving.Service(stub_in_child, onnxkit.COURSE_ONNX).start()


def test_check_shutdown():
    with serving.Service(serving.paced_app, 0.0) as ok:
        pass
    checks.check_shutdown([ok])
    never = serving.Service(serving.paced_app, 0.0)
    rejects(checks.check_shutdown, [never], expect=r"never started")
    rejects(checks.check_shutdown, [], expect=r"empty")


# --- 5. load_test --------------------------------------------------------------------


async def load(url, bodies, concurrency, n_requests, *, sequential=False,
               unbounded=False, mean_as_p50=False, sum_throughput=False,
               raise_on_error=False, no_warmup=False):
    """A correct client of another design (a queue of jobs, one client per worker),
    with switches for known mistakes."""
    jobs = asyncio.Queue()
    for k in range(n_requests):
        jobs.put_nowait(k)
    lat, failures = [], 0
    headers = {"content-type": "application/json"}
    workers = 1 if sequential else n_requests if unbounded else concurrency
    clients = [httpx.AsyncClient(base_url=url) for _ in range(workers)]

    async def one(client, body):
        start = time.perf_counter()
        r = await client.post("/predict", content=body, headers=headers)
        if raise_on_error:
            r.raise_for_status()
        return time.perf_counter() - start, r.status_code != 200

    async def worker(client):
        nonlocal failures
        while not jobs.empty():
            k = jobs.get_nowait()
            seconds, failed = await one(client, bodies[k % len(bodies)])
            lat.append(seconds)
            failures += failed

    if not no_warmup:
        await asyncio.gather(*(one(c, bodies[0]) for c in clients[:concurrency]))
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    wall = time.perf_counter() - t0
    for c in clients:
        await c.aclose()
    p50 = float(np.mean(lat)) if mean_as_p50 else float(np.percentile(lat, 50))
    return {"throughput": n_requests / (sum(lat) if sum_throughput else wall),
            "p50": p50, "p99": float(np.percentile(lat, 99)),
            "latencies": lat, "failures": failures}


def client(**mistake):
    async def load_test(url, bodies, concurrency, n_requests):
        return await load(url, bodies, concurrency, n_requests, **mistake)
    return load_test


def test_load_test_accepts_another_correct_client(capsys):
    checks.check_load_test(client())
    assert "passed (3 cases)" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, expect", [
    ({"no_warmup": True}, r"received 20 requests; expected 20 timed plus one"),
    ({"mean_as_p50": True}, r"p50: expected .*that is the mean"),
    ({"sum_throughput": True}, r"throughput .*sum of the latencies"),
    ({"raise_on_error": True}, r"every 10th.*HTTPStatusError.*a failure to count"),
])
def test_load_test_rejects(mistake, expect):
    rejects(checks.check_load_test, client(**mistake), expect=expect)


def test_load_test_rejects_a_sequential_and_an_unbounded_client():
    async def sequential(url, bodies, concurrency, n_requests):
        out = await load(url, bodies, 1, n_requests)
        return out
    # concurrency 1 passes; the first concurrent case finds the missing overlap
    rejects(checks.check_load_test, sequential,
            expect=r"concurrency 4.*(received 41 requests|at most 1 request)")
    # how many overlap depends on the machine's speed; any number above 1 is wrong
    msg = rejects(checks.check_load_test, client(unbounded=True),
                  expect=r"had \d+ of your requests in flight at once; the limit is 1")
    assert int(re.search(r"had (\d+) of your", msg).group(1)) >= 2, msg


def test_load_test_must_be_a_coroutine_function():
    def blocking(url, bodies, concurrency, n_requests):
        return {}
    rejects(checks.check_load_test, blocking, expect=r"expected an async def")
