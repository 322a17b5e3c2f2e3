"""Chapter 3's performance statements, measured in one run: runtimes and serving.

1. **Runtimes.** The course model in PyTorch eager, ONNX Runtime fp32 and ONNX Runtime
   int8 (static QDQ, per-channel weights, calibrated on 256 training digits), one
   thread, batch 1 and 32: median latency per call and the ratio to PyTorch eager.
2. **The load generator's own ceiling.** A service that does nothing
   (``serving.paced_app(0)``) under this script's client at concurrency 1, 8, 32 —
   with one httpx client per worker (what the course uses) and with one client shared
   by every worker (a pitfall: httpx issue #3215).
3. **Serving.** A FastAPI + uvicorn service in its own process (``serving.Service``)
   answering ``POST /predict`` with one image per request, without micro-batching,
   with greedy micro-batching (one model call for whatever queued while the model was
   busy) and with a 2 ms collection window, at concurrency 1, 8, 32: requests per second, p50 and p99. Two
   models: the course model (tiny: HTTP costs more than inference) and
   ``onnxkit.stand_in_model()`` (67 MB of weights read once per call, like a larger
   model), where batching pays.

Each serving point is measured ``--rounds`` times, interleaved; the table gives the
median of the rounds, number by number. The client runs on the same machine as the service, so on a small
machine the two share its cores: the ceiling of part 2 says how far the client limits
part 3.

    .venv/bin/python benchmarks/deployment.py [--requests 1000] [--rounds 3] [--write]

``--write`` saves ``benchmarks/results/deployment.md`` and ``deployment.json`` (the
numbers the chapter's serving page plots).
"""


import argparse
import asyncio
import json
from contextlib import asynccontextmanager
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request

from model2metal import onnxkit, serving, timing
from model2metal.data import load_digits_split
from model2metal.models import PIXEL_MEAN, PIXEL_STD, load_course_model, preprocess
from results_file import emit

CONCURRENCY = (1, 8, 32)
MAX_BATCH = 32
#: micro-batching policies: None = off; 0 = greedy (run at once with whatever queued
#: while the model was busy); 0.002 = wait up to 2 ms for more requests
POLICIES = (None, 0.0, 0.002)


# ---------------------------------------------------------------------------
# 1. runtimes
# ---------------------------------------------------------------------------


def int8_model(fp32_path: Path, out_dir: Path, calibration: np.ndarray) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(preprocess(calibration[i:i + 32]).numpy()
                                for i in range(0, len(calibration), 32))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    prepared, out = out_dir / "prepared.onnx", out_dir / "int8.onnx"
    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8)
    return out


def runtimes(work: Path, repeat: int) -> list[dict]:
    X_train, X_test, _, y_test = load_digits_split()
    torch.set_num_threads(1)
    model = load_course_model()
    int8 = int8_model(onnxkit.COURSE_ONNX, work, X_train[:256])
    sessions = {"ONNX Runtime fp32": onnxkit.session(onnxkit.COURSE_ONNX, threads=1),
                "ONNX Runtime int8": onnxkit.session(int8, threads=1)}
    all_x = preprocess(X_test)
    with torch.no_grad():
        eager = model(all_x).argmax(1).numpy()
    accuracy = {"PyTorch eager": float((eager == y_test).mean())}
    for name, sess in sessions.items():
        logits = sess.run(None, {"images": all_x.numpy()})[0]
        accuracy[name] = float((logits.argmax(1) == y_test).mean())
    rows = []
    for batch in (1, 32):
        x = preprocess(X_test[:batch])
        runners = {"PyTorch eager": lambda: model(x)}
        for name, sess in sessions.items():
            runners[name] = lambda sess=sess: sess.run(None, {"images": x.numpy()})
        with torch.no_grad():
            results = {name: timing.measure(fn, name=name, warmup=20, repeat=repeat)
                       for name, fn in runners.items()}
        base = results["PyTorch eager"].median
        for name, r in results.items():
            rows.append({"runtime": name, "batch": batch, "median_s": r.median,
                         "iqr_s": r.q3 - r.q1, "speedup_vs_eager": base / r.median,
                         "test_accuracy": accuracy[name]})
    rows.append({"int8_bytes": int8.stat().st_size,
                 "fp32_bytes": onnxkit.COURSE_ONNX.stat().st_size})
    return rows


# ---------------------------------------------------------------------------
# the service and the load client
# ---------------------------------------------------------------------------


class MicroBatcher:
    """Collects concurrent requests — those that queued while the model was busy,
    then for up to ``max_delay`` seconds more — into one call of ``infer`` of at most
    ``max_batch`` images (in a worker thread, so that the event loop keeps accepting
    requests meanwhile), and hands each request its rows."""

    def __init__(self, infer, max_batch=MAX_BATCH, max_delay=0.0):
        self.infer, self.max_batch, self.max_delay = infer, max_batch, max_delay
        self.queue, self.worker = None, None

    async def start(self):
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self.run())

    async def stop(self):
        self.worker.cancel()
        try:
            await self.worker
        except asyncio.CancelledError:
            pass

    async def submit(self, images):
        answer = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((images, answer))
        return await answer

    async def run(self):
        loop, held = asyncio.get_running_loop(), None
        while True:
            batch = [held or await self.queue.get()]
            held, size = None, len(batch[0][0])
            deadline = loop.time() + self.max_delay
            while size < self.max_batch:
                try:  # what queued while the model was busy, then wait for more
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), left)
                    except TimeoutError:
                        break
                if size + len(item[0]) > self.max_batch:
                    held = item
                    break
                batch.append(item)
                size += len(item[0])
            try:
                out = await asyncio.to_thread(
                    self.infer, np.concatenate([images for images, _ in batch]))
            except Exception as exc:  # every waiting request learns why
                for _, answer in batch:
                    answer.done() or answer.set_exception(exc)
                continue
            start = 0
            for images, answer in batch:
                answer.done() or answer.set_result(out[start:start + len(images)])
                start += len(images)


def make_service(model_path, mean, std, max_delay):
    """The benchmark's service: JSON images in [0, 1] → labels; no validation beyond
    what the benchmark sends (lab 03_03 builds the complete one)."""
    session = onnxkit.session(model_path, threads=1)

    def infer(images):
        x = ((images - mean) / std).astype(np.float32)[:, None]
        return session.run(None, {"images": x})[0]

    batcher = None if max_delay is None else MicroBatcher(infer, max_delay=max_delay)

    @asynccontextmanager
    async def lifespan(app):
        if batcher:
            await batcher.start()
        yield
        if batcher:
            await batcher.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        images = np.asarray(json.loads(await request.body())["images"], np.float32)
        logits = await batcher.submit(images) if batcher else infer(images)
        return {"labels": logits.argmax(axis=1).tolist()}

    return app


async def load(url, bodies, concurrency, n_requests, shared_client=False):
    """``concurrency`` workers, each with its own keep-alive connection, send
    ``n_requests`` timed requests after one untimed request each."""
    import httpx

    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency,
                          max_keepalive_connections=concurrency)
    shared = httpx.AsyncClient(base_url=url, limits=limits) if shared_client else None
    clients = [shared or httpx.AsyncClient(base_url=url) for _ in range(concurrency)]
    latencies, failures = [], 0
    jobs = iter(range(n_requests))

    async def worker(client, timed):
        nonlocal failures
        for k in jobs if timed else range(1):
            start = time.perf_counter()
            response = await client.post("/predict", headers=headers,
                                         content=bodies[k % len(bodies)])
            if timed:
                latencies.append(time.perf_counter() - start)
                failures += response.status_code != 200

    await asyncio.gather(*(worker(c, False) for c in clients))
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, True) for c in clients))
    wall = time.perf_counter() - start
    for client in set(clients):
        await client.aclose()
    return {"throughput_rps": n_requests / wall,
            "p50_s": float(np.percentile(latencies, 50)),
            "p99_s": float(np.percentile(latencies, 99)), "failures": failures}


def median_round(rounds: list[dict]) -> dict:
    """The median over the rounds of each number (throughput, p50, p99, failures),
    taken one number at a time."""
    return {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}


def serving_points(work: Path, n_requests: int, rounds: int) -> list[dict]:
    X_test = load_digits_split()[1]
    bodies = [json.dumps({"images": X_test[i:i + 1].tolist()}).encode()
              for i in range(len(X_test))]
    stand_in = onnxkit.stand_in_model(work / "stand_in.onnx")
    points = []
    with serving.Service(serving.paced_app, 0.0) as idle:
        for shared in (False, True):
            for c in CONCURRENCY:
                runs = [serving.run(load(idle.url, bodies, c, n_requests, shared))
                        for _ in range(rounds)]
                points.append({"model": "none (client ceiling)",
                               "client": "one shared" if shared else "one per worker",
                               "max_delay": None, "concurrency": c,
                               **median_round(runs)})
    for model_name, path in (("course model", onnxkit.COURSE_ONNX),
                             ("stand-in, 67 MB", stand_in)):
        services = {b: serving.Service(make_service, path, PIXEL_MEAN, PIXEL_STD, b)
                    for b in POLICIES}
        try:
            for service in services.values():
                service.start()
            for c in CONCURRENCY:
                runs = {b: [] for b in services}
                for _ in range(rounds):  # interleaved, so drift hits all alike
                    for b, service in services.items():
                        runs[b].append(serving.run(load(service.url, bodies, c,
                                                        n_requests)))
                for b in services:
                    points.append({"model": model_name, "client": "one per worker",
                                   "max_delay": b, "concurrency": c,
                                   **median_round(runs[b])})
        finally:
            for service in services.values():
                service.stop()
    return points


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def runtime_table(rows: list[dict]) -> str:
    lines = ["| runtime | batch | median per call | IQR | vs PyTorch eager | test accuracy |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "runtime" in r:
            lines.append(
                f"| {r['runtime']} | {r['batch']} | {timing.format_seconds(r['median_s'])}"
                f" | {timing.format_seconds(r['iqr_s'])} | {r['speedup_vs_eager']:.1f}× "
                f"| {100 * r['test_accuracy']:.1f} % |")
    sizes = rows[-1]
    lines.append(f"\nModel files: fp32 {sizes['fp32_bytes']:,} bytes, int8 "
                 f"{sizes['int8_bytes']:,} bytes.")
    return "\n".join(lines)


def policy_name(max_delay) -> str:
    if max_delay is None:
        return "off"
    return "greedy" if max_delay == 0 else f"window {1e3 * max_delay:g} ms"


def serving_table(points: list[dict]) -> str:
    lines = ["| model | client | micro-batching | concurrency | requests/s | p50 | p99 |"
             " failures |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(
            f"| {p['model']} | {p['client']} | {policy_name(p['max_delay'])} | "
            f"{p['concurrency']} | {p['throughput_rps']:,.0f} | "
            f"{timing.format_seconds(p['p50_s'])} | {timing.format_seconds(p['p99_s'])}"
            f" | {p['failures']:.0f} |")
    ratios = []
    for model in ("course model", "stand-in, 67 MB"):
        at = {(p["max_delay"], p["concurrency"]): p for p in points
              if p["model"] == model}
        for policy in POLICIES[1:]:
            for c in CONCURRENCY:
                on, off = at[policy, c], at[None, c]
                ratios.append(
                    f"| {model} | {policy_name(policy)} | {c} | "
                    f"{on['throughput_rps'] / off['throughput_rps']:.2f}× "
                    f"| {on['p99_s'] / off['p99_s']:.2f}× |")
    lines += ["", "Micro-batching ÷ no batching, same model and concurrency:", "",
              "| model | policy | concurrency | throughput | p99 |",
              "|---|---|---:|---:|---:|", *ratios]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--write", action="store_true", help="save the results files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="m2m_deployment_") as tmp:
        rows = runtimes(Path(tmp), args.repeat)
        points = serving_points(Path(tmp), args.requests, args.rounds)
    method = (
        "runtimes: one thread, timing.measure (20 warm-up calls, median of "
        f"{args.repeat} samples); serving: service and client on this machine, one "
        f"image per request, {args.requests} timed requests per point after one "
        f"untimed request per worker, median of {args.rounds} interleaved rounds; "
        f"micro-batching: up to {MAX_BATCH} images per model call, greedy or with a "
        "2 ms window; "
        "ONNX Runtime with 1 thread in the service")
    body = ("## Runtimes (the course model)\n\n" + runtime_table(rows)
            + "\n\n## Serving\n\n" + serving_table(points))
    emit("deployment", method, body, args.write,
         data={"runtimes": rows, "serving": points})


if __name__ == "__main__":
    main()
