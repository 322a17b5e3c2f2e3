"""Checks for lab 03_03 "Serve it under load".

Conventions the lab states and these checks hold it to:

* ``parse_images(body, content_type)`` turns the raw bytes of a ``POST /predict``
  request into a float32 array of shape ``(n, 8, 8)``, or raises
  ``model2metal.serving.BadRequest(status, message)``. The contract, tested in this
  order: 415 unless the media type (before any ``;``, any case) is
  ``application/json``; 413 for a body over ``max_body_bytes`` bytes; 400 for an empty
  body or one that is not UTF-8 JSON; 422 unless the JSON is an object whose
  ``"images"`` is a non-empty list of images, each 8 lists of 8 numbers (not
  booleans, strings or null), finite and within [0, 1]; 413 for more than
  ``max_images`` images (checked before the images are read).
* ``predict_probabilities(session, images)`` normalises ``(n, 8, 8)`` images in
  [0, 1] as the course model was trained (``PIXEL_MEAN``, ``PIXEL_STD``), runs the
  ONNX Runtime session, and returns the softmax probabilities, shape ``(n, 10)``, with
  NumPy only.
* ``MicroBatcher(infer, max_batch, max_delay)`` with ``async start()``,
  ``async submit(images)`` (→ the rows of ``infer``'s output for those images) and
  ``async stop()``: one ``infer`` call serves several requests, never more than
  ``max_batch`` images unless one request alone has more, a lone request waits at
  most about ``max_delay``, an error of ``infer`` reaches every request of that batch
  and the batcher serves on, and ``stop`` leaves no task running.
* ``make_app(model_path, max_delay=None)`` returns a FastAPI app: ``GET /health``
  answers 200; ``POST /predict`` answers 200 with ``{"labels": [...],
  "probabilities": [[...], ...]}`` or a 4xx JSON ``{"error": ...}`` with
  ``parse_images``'s status, and never dies or hangs; the process exits by itself on
  SIGTERM. ``max_delay=None``: no batching; a number: a MicroBatcher with that delay.
* ``async load_test(url, bodies, concurrency, n_requests)``: ``concurrency`` workers
  each send one untimed request, then share ``n_requests`` timed ones (bodies taken
  in turn); returns ``throughput`` (timed requests per second of wall time),
  ``p50``, ``p99`` (seconds, of the returned ``latencies``), ``latencies`` (one per
  timed request) and ``failures`` (answers other than 200).
"""

import asyncio
import inspect
import json
import subprocess
import time

import numpy as np

from .. import serving
from ..serving import BadRequest
from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_type,
    call_learner,
    describe,
    hint_from_evidence,
    passed,
)

__all__ = [
    "check_parse_images",
    "check_predict_probabilities",
    "check_micro_batcher",
    "check_service",
    "check_load_test",
    "check_shutdown",
]

#: how long a service may take to exit after SIGTERM before the check kills it
STOP_TIMEOUT_S = 8.0

STATUS_MEANING = {
    400: "400 Bad Request: the body cannot be read as JSON",
    413: "413 Content Too Large: over a documented size limit",
    415: "415 Unsupported Media Type: the Content-Type is not application/json",
    422: "422 Unprocessable Content: valid JSON that breaks the contract",
}


# ---------------------------------------------------------------------------
# 1. input validation
# ---------------------------------------------------------------------------


def _body(obj, pad_to: int | None = None) -> bytes:
    text = json.dumps(obj, allow_nan=True).encode()
    return text if pad_to is None else text + b" " * (pad_to - len(text))


def _digits(start: int, n: int) -> np.ndarray:
    from ..data import load_digits_split

    return load_digits_split()[1][start:start + n].astype(np.float32)


def _valid_cases(max_images: int, max_body_bytes: int):
    """(case, body, content type, expected array)."""
    binary = (np.arange(64).reshape(1, 8, 8) % 2).astype(np.float32)
    three, many = _digits(0, 3), _digits(10, max_images)
    edge = _digits(5, 1)
    return [
        ("one image of the integers 0 and 1",
         _body({"images": binary.astype(int).tolist()}), "application/json", binary),
        ("three test digits, Content-Type with a charset",
         _body({"images": three.tolist()}), "application/json; charset=utf-8", three),
        (f"{max_images} images, exactly the limit",
         _body({"images": many.tolist()}), "application/json", many),
        ("Content-Type in capitals", _body({"images": three.tolist()}),
         "Application/JSON", three),
        (f"a body of exactly {max_body_bytes} bytes (spaces after the JSON)",
         _body({"images": edge.tolist()}, pad_to=max_body_bytes),
         "application/json", edge),
    ]


def _malformed_cases(max_images: int, max_body_bytes: int):
    """(case, body, content type, expected status, hint for accepting it)."""
    one = _digits(0, 1)[0].tolist()
    good = _body({"images": [one]})

    def image_with(value):
        rows = [list(r) for r in one]
        rows[3][4] = value
        return _body({"images": [rows]})

    return [
        ("no Content-Type header", good, None, 415, None),
        ("Content-Type text/plain", good, "text/plain", 415, None),
        ("a form post", b"images=1", "application/x-www-form-urlencoded", 415, None),
        (f"a body one byte over {max_body_bytes} bytes",
         _body({"images": [one]}, pad_to=max_body_bytes + 1), "application/json",
         413, "compare len(body) with the limit before parsing it"),
        (f"{max_images + 1} images", _body({"images": [one] * (max_images + 1)}),
         "application/json", 413, "count the images before reading them"),
        ("an empty body", b"", "application/json", 400, None),
        ("a body that is not JSON", b"images: [0.5]", "application/json", 400, None),
        ("truncated JSON", good[: len(good) // 2], "application/json", 400, None),
        ("bytes that are not UTF-8", b'{"images": "\xff\xfe"}', "application/json",
         400, None),
        ("a JSON list instead of an object", _body([[one]]), "application/json",
         422, None),
        ("an object without the key images", _body({"image": [one]}),
         "application/json", 422, None),
        ("images is a string", _body({"images": "0.5"}), "application/json", 422,
         None),
        ("images is an empty list", _body({"images": []}), "application/json", 422,
         "an empty batch is not a request the model can answer"),
        ("an image of 7 rows", _body({"images": [one[:7]]}), "application/json",
         422, None),
        ("a row of 9 numbers", _body({"images": [[one[0] + [0.5]] + one[1:]]}),
         "application/json", 422, None),
        ("an image flattened to 64 numbers",
         _body({"images": [sum(one, [])]}), "application/json", 422, None),
        ("images nested one level too deep", _body({"images": [[one]]}),
         "application/json", 422, None),
        ("a pixel given as the string \"0.5\"", image_with("0.5"),
         "application/json", 422,
         "np.asarray turns numeric strings into numbers or a string array: check "
         "each value's type"),
        ("a pixel true", image_with(True), "application/json", 422,
         "in Python True is an int (isinstance(True, int) is True): exclude bool "
         "explicitly"),
        ("a pixel null", image_with(None), "application/json", 422, None),
        ("a pixel NaN", image_with(float("nan")), "application/json", 422,
         "json.loads accepts the non-standard literals NaN and Infinity and returns "
         "float('nan') and float('inf'): np.isfinite finds them"),
        ("a pixel Infinity", image_with(float("inf")), "application/json", 422,
         "json.loads accepts the non-standard literals NaN and Infinity: "
         "np.isfinite finds them"),
        ("a pixel 1e999 (overflows to inf)",
         good.replace(b"0.0", b"1e999", 1), "application/json", 422,
         "a number too large for a float becomes inf when it is parsed"),
        ("a pixel 16 (the raw 0-16 scale of scikit-learn's digits)", image_with(16),
         "application/json", 422,
         "the contract says pixels in [0, 1]: a client on another scale would get "
         "confident nonsense, so refuse it"),
        ("a pixel -0.5", image_with(-0.5), "application/json", 422, None),
    ]


def _calling(fn):
    """``fn`` as a function that returns ("ok", value) or ("refused", BadRequest)."""
    def outcome(*args):
        try:
            return "ok", fn(*args)
        except BadRequest as refusal:
            return "refused", refusal
    return outcome


def check_parse_images(fn, max_images: int = 64, max_body_bytes: int = 256 * 1024):
    """``fn(body, content_type)`` -> float32 (n, 8, 8), or raises BadRequest."""
    name = "check_parse_images"
    other_error = ("inside the service any exception that is not BadRequest becomes a "
                   "500 Internal Server Error: catch the library's error and raise "
                   "BadRequest(status, message) instead")
    valid = _valid_cases(max_images, max_body_bytes)
    for case, body, content_type, expected in valid:
        kind, got = call_learner(name, case, _calling(fn), body, content_type,
                                 label="your parse_images()", hint=other_error)
        if kind == "refused":
            raise CheckFailed(name, case, f"refused a valid request with {got}",
                              "this request follows the contract: accept it")
        assert_type(got, np.ndarray, name, case)
        assert_true(got.dtype == np.float32, name, case,
                    f"dtype: expected float32 (the model's input type), got {got.dtype}",
                    "np.asarray(..., dtype=np.float32)")
        assert_array_close(got, expected, name, case, rtol=0, atol=0,
                           what="the parsed images")
    malformed = _malformed_cases(max_images, max_body_bytes)
    for case, body, content_type, status, accepted_hint in malformed:
        kind, got = call_learner(name, case, _calling(fn), body, content_type,
                                 label="your parse_images()", hint=other_error)
        if kind == "ok":
            raise CheckFailed(
                name, case,
                f"accepted a malformed request and returned {describe(got)}; "
                f"expected BadRequest with status {status}",
                accepted_hint or STATUS_MEANING[status])
        assert_true(got.status == status, name, case,
                    f"answered {got.status}; the contract says {status}",
                    STATUS_MEANING[status] + "; the checks run in the order the "
                    "exercise lists")
        assert_true(bool(got.message.strip()), name, case,
                    "the BadRequest has an empty message",
                    "say what was wrong: the client's developer reads it")
    passed(name, len(valid) + len(malformed))


# ---------------------------------------------------------------------------
# 2. pre- and post-processing
# ---------------------------------------------------------------------------


def _reference_probabilities(images: np.ndarray) -> np.ndarray:
    import torch

    from ..models import load_course_model, preprocess

    with torch.no_grad():
        logits = load_course_model()(preprocess(images))
    return torch.softmax(logits, dim=1).numpy()


def _raw_logits(session, images: np.ndarray, normalise: bool) -> np.ndarray:
    from ..models import PIXEL_MEAN, PIXEL_STD

    x = (images - PIXEL_MEAN) / PIXEL_STD if normalise else images
    return session.run(None, {"images": x.astype(np.float32)[:, None]})[0]


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check_predict_probabilities(fn):
    """``fn(session, images)`` -> (n, 10) softmax probabilities of the course model."""
    from .. import onnxkit

    name = "check_predict_probabilities"
    session = onnxkit.session(onnxkit.COURSE_ONNX, threads=1)
    cases = [("one test digit", _digits(0, 1)), ("five test digits", _digits(1, 5)),
             ("64 test digits", _digits(6, 64))]
    for case, images in cases:
        expected = _reference_probabilities(images)
        got = call_learner(name, case, fn, session, images,
                           hint="normalise, add the channel axis, run the session, "
                           "then softmax over the 10 classes")
        assert_type(got, np.ndarray, name, case)
        raw = _raw_logits(session, images, True)
        unnormalised = _raw_logits(session, images, False)
        hint = hint_from_evidence(got, [
            ("these are the logits: the service promises probabilities (softmax)",
             raw),
            ("softmax over the wrong axis: each image's 10 probabilities sum to 1, "
             "not each class's n", _softmax(raw, 0)),
            ("the model saw the pixels without the normalisation it was trained with "
             "(PIXEL_MEAN, PIXEL_STD)", _softmax(unnormalised, 1)),
        ], rtol=1e-4, atol=1e-5)
        assert_array_close(got, expected, name, case, rtol=1e-4, atol=1e-5,
                           what="probabilities", hint=hint)
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 3. micro-batching
# ---------------------------------------------------------------------------


class _FakeModel:
    """An ``infer`` whose rows are a known function of each image, that records the
    batch sizes it was called with, may take time, and refuses a poisoned image."""

    def __init__(self, seconds: float = 0.0):
        self.seconds, self.calls = seconds, []

    def __call__(self, images):
        images = np.asarray(images)
        self.calls.append(len(images))
        if self.seconds:
            time.sleep(self.seconds)
        if np.any(images < 0):
            raise ValueError("a poisoned image (-1) in this batch")
        return self.rows(images)

    @staticmethod
    def rows(images):
        flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        return np.stack([flat.sum(1), flat[:, 0], flat[:, -1]], axis=1)


def _requests(sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.random((n, 8, 8)).astype(np.float32) for n in sizes]


async def _in_time(awaitable, seconds: float, what: str, check: str, case: str):
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise CheckFailed(
            check, case, f"{what} did not finish within {seconds:g} s",
            "every submit must be answered: the worker task has to run (start() "
            "creates it), and each request's future needs a result or an exception"
        ) from None


def _batcher_scenarios(cls, check):
    """(case, coroutine function) pairs; each function takes its case name, raises
    CheckFailed on a problem and returns nothing."""

    async def started(model, case, **options):
        batcher = cls(model, **options)
        await _in_time(batcher.start(), 2, "start()", check, case)
        return batcher

    async def finish(batcher, case):
        await _in_time(batcher.stop(), 2, "stop()", check, case)
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert_true(not left, check, case,
                    f"after stop() {len(left)} task(s) still run: "
                    f"{[t.get_coro().__qualname__ for t in left]}",
                    "stop() must end the worker task (cancel it, then await it)")

    def rows_match(got, images, case, k):
        expected = _FakeModel.rows(images)
        assert_true(got is not None and np.shape(got) == expected.shape, check, case,
                    f"request {k} ({len(images)} images) got {describe(got)}; "
                    f"expected its {len(images)} rows of infer's output",
                    "give each request the slice of the batch output that belongs "
                    "to its own images, in order")
        if not np.allclose(np.asarray(got, dtype=np.float64), expected):
            raise CheckFailed(check, case,
                              f"request {k} got rows that belong to other images",
                              "keep the requests in the order you concatenated them "
                              "and slice the output with running offsets")

    async def lone(case):
        model = _FakeModel()
        batcher = await started(model, case, max_batch=32, max_delay=0.05)
        (images,) = _requests([3], 0)
        start = time.perf_counter()
        got = await _in_time(batcher.submit(images), 2, "submit()", check, case)
        waited = time.perf_counter() - start
        rows_match(got, images, case, 0)
        assert_true(waited < 0.05 + 0.4, check, case,
                    f"a lone request waited {waited:.2f} s with max_delay 0.05 s",
                    "stop collecting when max_delay has passed since the first "
                    "request of the batch arrived")
        await finish(batcher, case)

    async def together(case, sizes, max_batch, seconds, seed):
        """Submit requests of ``sizes`` images all at once; each must get its own
        rows, and no model call may exceed max_batch. Returns the batch sizes."""
        model = _FakeModel(seconds=seconds)
        batcher = await started(model, case, max_batch=max_batch, max_delay=seconds)
        requests = _requests(sizes, seed)
        got = await _in_time(asyncio.gather(*(batcher.submit(r) for r in requests)),
                             5, f"{len(requests)} submits", check, case)
        for k, (images, rows) in enumerate(zip(requests, got)):
            rows_match(rows, images, case, k)
        assert_true(max(model.calls) <= max_batch, check, case,
                    f"infer was called with batches of {model.calls}; max_batch is "
                    f"{max_batch}",
                    "a request that would not fit waits for the next batch (do not "
                    "split it, do not exceed max_batch)")
        assert_true(sum(model.calls) == sum(sizes), check, case,
                    f"infer saw {sum(model.calls)} images for {sum(sizes)} submitted",
                    "each request's images go to the model exactly once")
        await finish(batcher, case)
        return model.calls

    async def crowd(case):
        calls = await together(case, [1] * 48, 16, 0.002, 1)
        assert_true(len(calls) <= 12, check, case,
                    f"infer was called {len(calls)} times for 48 requests "
                    f"that arrived together (batch sizes {calls})",
                    "collect every request that is already waiting in the queue "
                    "before calling the model")

    async def mixed(case):
        await together(case, [1, 5, 2, 4, 3, 5, 1, 1, 2, 5, 4, 3], 8, 0.001, 2)

    async def poisoned(case):
        model = _FakeModel()
        batcher = await started(model, case, max_batch=32, max_delay=0.0)
        bad = -np.ones((1, 8, 8), np.float32)
        try:
            await _in_time(batcher.submit(bad), 2, "submit() of a failing batch",
                           check, case)
        except CheckFailed:
            raise
        except ValueError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(check, case,
                              f"submit() raised {type(exc).__name__}: {exc}; expected "
                              "the ValueError that infer raised",
                              "pass infer's exception to the request's future "
                              "(future.set_exception)") from None
        else:
            raise CheckFailed(check, case,
                              "submit() returned although infer raised ValueError",
                              "the request must learn that its batch failed")
        (images,) = _requests([2], 3)
        got = await _in_time(batcher.submit(images), 2,
                             "submit() after a failed batch", check, case)
        rows_match(got, images, case, 1)
        await finish(batcher, case)

    async def idle(case):
        batcher = await started(_FakeModel(), case, max_batch=4, max_delay=0.01)
        await finish(batcher, case)

    return [
        ("one request of 3 images alone, max_delay 0.05 s", lone),
        ("48 concurrent one-image requests, max_batch 16", crowd),
        ("requests of 1 to 5 images, max_batch 8", mixed),
        ("infer raises ValueError on one batch", poisoned),
        ("start() then stop() with no request", idle),
    ]


def check_micro_batcher(cls):
    """``cls(infer, max_batch, max_delay)`` with async start, submit and stop."""
    name = "check_micro_batcher"
    assert_true(inspect.isclass(cls), name, None,
                f"expected the class MicroBatcher, got {describe(cls)}",
                "pass the class itself: check_micro_batcher(MicroBatcher)")
    for method in ("start", "submit", "stop"):
        assert_true(inspect.iscoroutinefunction(getattr(cls, method, None)), name,
                    None, f"MicroBatcher.{method} must be an async def method",
                    "the batcher lives on the service's event loop: its methods "
                    "are coroutines")
    scenarios = _batcher_scenarios(cls, name)
    for case, scenario in scenarios:
        call_learner(name, case,
                     lambda: serving.run(scenario(case)),
                     label="your MicroBatcher",
                     hint="run the check's scenario again in your head: which "
                     "method raised, and with which input?")
    passed(name, len(scenarios))


# ---------------------------------------------------------------------------
# 4. the service, probed in its own process
# ---------------------------------------------------------------------------


def _probe(service, check, case, method, path, **kwargs):
    """One request with a timeout; CheckFailed if the service hangs or has died."""
    import httpx

    try:
        return httpx.request(method, service.url + path, timeout=5.0, **kwargs)
    except httpx.TimeoutException:
        raise CheckFailed(check, case, f"{method} {path} got no answer within 5 s",
                          "the service hangs: something blocks the event loop or "
                          "waits for a result that never comes") from None
    except httpx.HTTPError as exc:
        try:  # a process that crashed may need a moment to be reaped
            code = service.process.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        raise CheckFailed(
            check, case,
            f"{method} {path} failed: {type(exc).__name__}"
            + (f"; the service process has died (exit code {code}). The end of its "
               f"log:\n{service.log(1200)}" if code is not None else ""),
            "a service must survive every request: refuse bad input with a 4xx, "
            "never let it crash the process") from None


def _json_of(response, check, case):
    try:
        return response.json()
    except ValueError:
        raise CheckFailed(check, case,
                          f"status {response.status_code}, but the body is not JSON: "
                          f"{response.text[:200]!r}",
                          "answer with a JSON object (FastAPI's JSONResponse)") from None


def _expect_predictions(response, images, check, case, service):
    assert_true(response.status_code == 200, check, case,
                f"POST /predict answered {response.status_code}: "
                f"{response.text[:300]!r}"
                + (f"\nthe end of the service's log:\n{service.log(1200)}"
                   if response.status_code >= 500 else ""),
                "a 500 means your handler raised: the log above says where (NumPy "
                "numbers are not JSON: .tolist() converts them)")
    body = _json_of(response, check, case)
    missing = [k for k in ("labels", "probabilities") if k not in body]
    assert_true(isinstance(body, dict) and not missing, check, case,
                f"the answer {describe(body)} lacks {missing}",
                'answer {"labels": [...], "probabilities": [[...], ...]}')
    expected = _reference_probabilities(images)
    labels = body["labels"]
    assert_true(isinstance(labels, list) and labels == expected.argmax(1).tolist(),
                check, case,
                f"labels: expected {expected.argmax(1).tolist()}, got {describe(labels)}",
                "the label of an image is the index of its largest probability")
    assert_array_close(np.asarray(body["probabilities"], dtype=np.float64), expected,
                       check, case, rtol=1e-3, atol=1e-4, what="probabilities")


def _bad_requests():
    one = _digits(0, 1)[0].tolist()
    as_json = {"content-type": "application/json"}
    huge = b'{"images": [' + b"[0.5, 0.5], " * 700_000 + b"[0.5]]}"  # about 8 MB
    return [
        ("an empty body", b"", as_json, 400),
        ("a body that is not JSON", b"{images: 1}", as_json, 400),
        ("an image of the wrong shape", _body({"images": [one[:5]]}), as_json, 422),
        ("a string pixel", _body({"images": [[["x"] * 8] * 8]}), as_json, 422),
        ("a NaN pixel", _body({"images": [[[float("nan")] * 8] * 8]}), as_json, 422),
        ("Content-Type text/plain", _body({"images": [one]}),
         {"content-type": "text/plain"}, 415),
        ("an 8 MB body", huge, as_json, 413),
    ]


def check_service(make_app, model_path, max_delay=None):
    """Start ``make_app(model_path, max_delay)`` in its own process and probe it."""
    from starlette.applications import Starlette

    name = "check_service"
    label = "no batching" if max_delay is None else f"max_delay {max_delay}"
    case = f"make_app(..., max_delay={max_delay})"
    app = call_learner(name, case, make_app, model_path, max_delay=max_delay)
    assert_type(app, Starlette, name, case, "make_app's result",
                "return the FastAPI app you built (app = FastAPI(...); ...; return app)")
    service = serving.Service(make_app, model_path, max_delay=max_delay,
                              stop_timeout=STOP_TIMEOUT_S)
    try:
        service.start()
    except serving.ServiceError as exc:
        raise CheckFailed(name, f"starting the service ({label})", str(exc),
                          "the service could not start: its log says why") from None
    n_cases = 0
    try:
        case = "GET /health"
        response = _probe(service, name, case, "GET", "/health")
        assert_true(response.status_code == 200, name, case,
                    f"answered {response.status_code}", "answer 200 when ready")
        images = _digits(20, 5)
        case = "POST /predict with 5 test digits"
        response = _probe(service, name, case, "POST", "/predict",
                          content=_body({"images": images.tolist()}),
                          headers={"content-type": "application/json"})
        _expect_predictions(response, images, name, case, service)
        case = "16 concurrent requests of one digit each"
        _concurrent_predictions(service, name, case)
        n_cases += 3
        for case, body, headers, status in _bad_requests():
            response = _probe(service, name, case, "POST", "/predict",
                              content=body, headers=headers)
            n_cases += 1
            assert_true(response.status_code == status, name, case,
                        f"answered {response.status_code} {response.text[:200]!r}; "
                        f"expected {status}",
                        "a 500 means the handler raised: catch BadRequest from "
                        "parse_images and answer with its status"
                        if response.status_code >= 500
                        else "answer with the status of parse_images' BadRequest")
            got = _json_of(response, name, case)
            assert_true(isinstance(got, dict) and isinstance(got.get("error"), str),
                        name, case, f"the error body is {describe(got)}",
                        'answer {"error": "what was wrong"}')
            health = _probe(service, name, f"GET /health after {case}", "GET",
                            "/health")
            assert_true(health.status_code == 200, name, f"after {case}",
                        f"GET /health answered {health.status_code}",
                        "the service must stay healthy after a bad request")
    finally:
        service.stop()
    _assert_clean_stop(service, name, label)
    passed(name, n_cases + 1, f" ({label}; stopped cleanly)")


def _concurrent_predictions(service, check, case):
    import httpx

    images = _digits(40, 16)

    async def all_at_once():
        async with httpx.AsyncClient(base_url=service.url, timeout=5.0) as client:
            return await asyncio.gather(*(
                client.post("/predict", content=_body({"images": [img.tolist()]}),
                            headers={"content-type": "application/json"})
                for img in images))

    try:
        responses = serving.run(all_at_once())
    except httpx.HTTPError as exc:
        raise CheckFailed(check, case, f"the requests failed: {type(exc).__name__}",
                          "the service must answer concurrent requests") from None
    for k, response in enumerate(responses):
        _expect_predictions(response, images[k:k + 1], check,
                            f"{case}: request {k}", service)


def _assert_clean_stop(service, check, label):
    case = f"SIGTERM ({label})"
    problem = {
        "killed": f"the service process was still running {service.stop_timeout:g} s "
                  "after SIGTERM; the check killed it",
        "had died": f"the service process had died before it was asked to stop "
                    f"(exit code {service.exit_code}). The end of its log:\n"
                    f"{service.log(1200)}",
    }.get(service.stop_outcome, f"the service was not stopped ({service.stop_outcome})")
    assert_true(service.stopped_cleanly is True, check, case, problem,
                "the lifespan's shutdown part must finish: stop the batcher there, "
                "and cancel a task before you await it (a task that waits for the "
                "next request never ends by itself)")
    assert_true(service.port_released(), check, case,
                f"port {service.port} still accepts connections after the stop",
                "another process is serving on that port: did your code start "
                "one of its own?")


def check_shutdown(services):
    """``services``: the serving.Service objects the lab started and stopped (one,
    or a list)."""
    name = "check_shutdown"
    if isinstance(services, serving.Service):
        services = [services]
    assert_type(services, (list, tuple), name, None, "the argument",
                "pass the Service objects you started, in a list")
    assert_true(len(services) > 0, name, None, "the list of services is empty",
                "pass the services the lab started")
    for k, service in enumerate(services):
        case = f"service {k + 1} of {len(services)}"
        assert_type(service, serving.Service, name, case, "the argument",
                    "pass the Service objects you started")
        assert_true(service.process is not None, name, case,
                    "this service was never started", "start it first")
        assert_true(service.stop_outcome is not None, name, case,
                    "the service has not been stopped", "call service.stop()")
        _assert_clean_stop(service, name, case)
    passed(name, len(services))


# ---------------------------------------------------------------------------
# 5. the load client, against a server whose timing is known
# ---------------------------------------------------------------------------

#: nine fast requests and one slow one, in order of arrival
_DELAYS = (0.01,) * 9 + (0.08,)


def check_load_test(fn):
    """``async fn(url, bodies, concurrency, n_requests)`` -> dict of the results."""
    import httpx

    name = "check_load_test"
    assert_true(inspect.iscoroutinefunction(fn), name, None,
                f"expected an async def function, got {describe(fn)}",
                "a load client that waits on many requests at once is a coroutine: "
                "async def load_test(...), awaiting httpx.AsyncClient calls")
    bodies = [_body({"images": [img.tolist()]}) for img in _digits(0, 4)]
    cases = [("concurrency 1, 20 requests", 1, 20, 0),
             ("concurrency 4, 40 requests, every 10th answered 503", 4, 40, 10),
             ("concurrency 8, 48 requests", 8, 48, 0)]
    for case, concurrency, n, fail_every in cases:
        with serving.Service(serving.paced_app, _DELAYS, fail_every) as server:
            got = call_learner(
                name, case,
                lambda: serving.run(fn(server.url, bodies, concurrency, n)),
                label="your load_test()",
                hint="a non-200 answer is a failure to count, not an exception")
            stats = httpx.get(server.url + "/stats", timeout=5).json()
        _check_load_result(got, stats, name, case, concurrency, n, fail_every)
    passed(name, len(cases))


def _check_load_result(got, stats, check, case, concurrency, n, fail_every):
    assert_type(got, dict, check, case, "result",
                "return a dict with throughput, p50, p99, latencies and failures")
    keys = ("throughput", "p50", "p99", "latencies", "failures")
    missing = [k for k in keys if k not in got]
    assert_true(not missing, check, case, f"the result lacks {missing}",
                "return all five entries")
    sent = stats["requests"]
    assert_true(sent == n + concurrency, check, case,
                f"the server received {sent} requests; expected {n} timed plus one "
                f"untimed per worker = {n + concurrency}",
                "each worker sends one untimed request first (it opens the "
                "connection), then the workers share the timed ones")
    most = stats["max_in_flight"]
    assert_true(most <= concurrency, check, case,
                f"the server had {most} of your requests in flight at once; the "
                f"limit is {concurrency}",
                "bound the concurrency: exactly `concurrency` workers, each "
                "waiting for its answer before it sends the next request")
    assert_true(most == concurrency, check, case,
                f"at most {most} request(s) were in flight at once; expected "
                f"{concurrency}",
                "the workers must run at the same time: asyncio.gather over "
                "`concurrency` worker coroutines, not a loop that awaits one by one")
    latencies = got["latencies"]
    assert_true(isinstance(latencies, list) and len(latencies) == n, check, case,
                f"latencies: expected a list of {n} floats (one per timed request), "
                f"got {describe(latencies)}",
                "time every timed request, and only those")
    lat = np.asarray(latencies, dtype=np.float64)
    assert_true(bool(np.all(lat >= 0.0095)) and bool(np.all(lat < 5)), check, case,
                f"latencies from {lat.min():.4f} to {lat.max():.4f} s, but every "
                "answer of this server takes at least 0.01 s",
                "read the clock right before sending and right after the "
                "answer; seconds, not milliseconds")
    expected_failures = (n + concurrency) // fail_every if fail_every else 0
    assert_true(got["failures"] == expected_failures, check, case,
                f"failures: expected {expected_failures}, got {describe(got['failures'])}"
                f" (the server answered {stats['failed']} requests with 503)",
                "count every timed answer whose status is not 200")
    for key, q in (("p50", 50), ("p99", 99)):
        want = float(np.percentile(lat, q))
        value = got[key]
        assert_type(value, (float, np.floating), check, case, key)
        if not np.isclose(float(value), want, rtol=1e-6, atol=1e-9):
            hint = hint_from_evidence(value, [
                ("that is the mean: a percentile is np.percentile(latencies, q)",
                 float(lat.mean())),
                ("that is the maximum, not the 99th percentile", float(lat.max()))],
                rtol=1e-6, atol=1e-9)
            raise CheckFailed(check, case,
                              f"{key}: expected {want:.4f} s (np.percentile of your "
                              f"own latencies), got {float(value):.4f}",
                              hint or "np.percentile(latencies, q)")
    throughput = got["throughput"]
    assert_type(throughput, (float, np.floating, int), check, case, "throughput")
    # with c workers busy all the time, requests/s ≈ c / mean latency
    model = concurrency / lat.mean()
    ratio = float(throughput) / model
    if not 0.5 < ratio < 1.5:
        hint = hint_from_evidence(throughput, [
            ("n divided by the sum of the latencies ignores that the requests "
             "overlapped: divide by the wall time of the timed part",
             n / lat.sum())], rtol=1e-3, atol=1e-6)
        raise CheckFailed(check, case,
                          f"throughput {float(throughput):.1f} requests/s, but "
                          f"{concurrency} workers at a mean latency of "
                          f"{1e3 * lat.mean():.1f} ms give about {model:.0f}",
                          hint or "timed requests ÷ wall-clock seconds from the "
                          "first timed request to the last answer")
