"""The serving scaffolding: a service in its own process, started, probed, stopped."""

import asyncio
import sys

import cloudpickle
import httpx
import numpy as np
import pytest

from model2metal import onnxkit, serving

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_paced_app_counts_and_fails_as_scripted():
    with serving.Service(serving.paced_app, (0.0, 0.05), 3) as service:
        assert service.alive()
        answers = [httpx.post(service.url + "/predict", json={"images": [[0]] * 2})
                   for _ in range(4)]
        stats = httpx.get(service.url + "/stats").json()
    assert [a.status_code for a in answers] == [200, 200, 503, 200]
    assert answers[0].json() == {"labels": [0, 0]}
    assert stats == {"requests": 4, "failed": 1, "images": 8, "max_in_flight": 1}
    assert service.stop_outcome == "exited" and service.stopped_cleanly
    assert service.exit_code in (0, -15)  # uvicorn re-raises SIGTERM after shutdown
    assert service.port_released() and not service.alive()
    assert service.stop()  # stopping twice is harmless


def dies_at_start():
    raise RuntimeError("no model here")


def test_a_service_that_dies_while_starting_reports_its_log():
    with pytest.raises(serving.ServiceError, match=r"(?s)exited while starting.*no model"):
        serving.Service(dies_at_start).start()


def test_run_works_inside_a_running_loop():
    async def inner():
        await asyncio.sleep(0)
        return 42

    async def outer():  # as in a Jupyter cell, where a loop already runs
        return serving.run(inner())

    assert asyncio.run(outer()) == 42


def test_free_port_and_bad_request():
    assert 1024 <= serving.free_port() <= 65535
    refusal = serving.BadRequest(422, "no images")
    assert (refusal.status, refusal.message, str(refusal)) == (422, "no images",
                                                               "422: no images")


def test_stand_in_model_is_seeded_and_shaped_like_the_course_model(tmp_path):
    a = onnxkit.stand_in_model(tmp_path / "a.onnx", hidden=64, layers=2, seed=1)
    b = onnxkit.stand_in_model(tmp_path / "b.onnx", hidden=64, layers=2, seed=1)
    assert a.read_bytes() == b.read_bytes()
    import onnx

    assert (onnxkit.input_dims(onnx.load(a))
            == onnxkit.input_dims(onnx.load(onnxkit.COURSE_ONNX)))
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    out = onnxkit.session(a, threads=1).run(None, {"images": x})[0]
    assert out.shape == (5, 10) and np.isfinite(out).all()
    full = onnxkit.stand_in_model(tmp_path / "full.onnx")
    assert 60e6 < full.stat().st_size < 75e6  # "67 MB", as the lab and page say
