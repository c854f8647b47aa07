"""The REST app over a real service, real artifacts and a real SQLite store (in process:
the app is called through its ASGI interface; the process tests start a real server)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from cinerec.serving.rest import create_app  # noqa: E402
from cinerec.serving.service import RecommendationService, ServiceConfig  # noqa: E402
from cinerec.serving.store import FeedbackStore  # noqa: E402
from tests.serving.artifacts import save_models  # noqa: E402

KEY = "test-key"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return save_models(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture
def service(models, tmp_path) -> RecommendationService:
    store = FeedbackStore.open(tmp_path / "feedback.db")
    svc = RecommendationService(ServiceConfig(models), store=store)
    yield svc
    store.close()


@pytest.fixture
def client(service) -> TestClient:
    return TestClient(create_app(service, api_key=KEY, max_body_bytes=64 * 1024, access_log=False))


def _ids(answer: dict) -> list[int]:
    return [it["movieId"] for it in answer["items"]]


def test_known_user_list_matches_the_model(client, service):
    r = client.get("/v1/recommendations", params={"user": 3, "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["basis"] == "model" and body["model"] == "svd" and len(body["items"]) == 5
    m = service.served("svd")
    direct = m.model.recommend(m.catalogue.user_index(3), 5)
    assert _ids(body) == [int(m.catalogue.item_ids.raw(int(i))) for i in direct.items]
    first = body["items"][0]
    assert first["title"].startswith("Movie ") and first["genres"]
    assert set(first) >= {"score", "predicted_rating", "confidence", "sigma", "explanation"}
    assert first["explanation"]["text"] and first["explanation"]["kind"]
    assert r.headers["x-request-id"]


def test_model_choice_exclude_and_risk(client):
    base = client.get("/v1/recommendations", params={"user": 3, "k": 5, "model": "ease"}).json()
    assert base["model"] == "ease" and base["items"][0]["predicted_rating"] is None
    top = _ids(base)[0]
    excluded = client.get("/v1/recommendations",
                          params={"user": 3, "k": 5, "model": "ease", "exclude": str(top)}).json()
    assert top not in _ids(excluded)
    risky = client.get("/v1/recommendations", params={"user": 3, "k": 20, "risk_aversion": 50}).json()
    sigmas = [it["sigma"] for it in risky["items"]]
    assert sigmas[0] <= np.median(sigmas)  # a huge risk aversion ranks low-sigma movies first


def test_history_folds_in_a_visitor_and_batches(client):
    history = [{"movieId": 7, "rating": 5}, {"movieId": 17, "rating": 4.5}, {"movieId": 27, "rating": 1}]
    r = client.post("/v1/recommendations", json={"history": history, "k": 5})
    assert r.status_code == 200 and r.json()["basis"] == "fold-in"
    assert not {7, 17, 27} & set(_ids(r.json()))
    batch = client.post("/v1/recommendations/batch", json={"requests": [
        {"user": 3, "k": 3}, {"history": history, "k": 3}, {"user": 999_999, "k": 3, "model": "ease"}]})
    results = batch.json()["results"]
    assert [x["basis"] for x in results] == ["model", "fold-in", "fallback"]
    assert results[0]["items"] == client.get("/v1/recommendations", params={"user": 3, "k": 3}).json()["items"]


def test_unknown_user_gets_the_explained_fallback(client):
    body = client.get("/v1/recommendations", params={"user": 424242}).json()
    assert body["basis"] == "fallback" and "unknown user" in body["fallback"]["text"]
    assert len(body["items"]) == 10


def test_items_search_similar_explain(client):
    hits = client.get("/v1/items", params={"search": "movie 17"}).json()["items"]
    assert hits[0]["movieId"] == 17 and hits[0]["title"].startswith("Movie 17 (")
    sim = client.get("/v1/items/17/similar", params={"k": 4}).json()
    assert sim["movie"]["movieId"] == 17 and len(sim["items"]) == 4 and 17 not in _ids(sim)
    why = client.get("/v1/explain", params={"user": 3, "item": 17}).json()
    assert why["item"]["movieId"] == 17 and why["item"]["explanation"]["text"]
    assert client.get("/v1/items/17").json()["n_ratings"] > 0


def test_ratings_need_the_key_are_idempotent_and_reach_the_next_list(client, service):
    user = 777_001  # a new user: the fallback until they rate
    assert client.get("/v1/recommendations", params={"user": user}).json()["basis"] == "fallback"
    rows = {"ratings": [{"user": user, "movieId": 7, "rating": 5, "timestamp": 100},
                        {"user": user, "movieId": 17, "rating": 4, "timestamp": 101}]}
    assert client.post("/v1/ratings", json=rows).status_code == 401
    assert client.post("/v1/ratings", json=rows, headers={"X-API-Key": "wrong"}).status_code == 401
    r = client.post("/v1/ratings", json=rows, headers={"X-API-Key": KEY})
    assert r.status_code == 201 and r.json() == {"stored": 2, "duplicates": 0}
    again = client.post("/v1/ratings", json=rows, headers={"Authorization": f"Bearer {KEY}"})
    assert again.json() == {"stored": 0, "duplicates": 2}
    assert service.store.count() == 2
    after = client.get("/v1/recommendations", params={"user": user}).json()
    assert after["basis"] == "fold-in" and not {7, 17} & set(_ids(after))
    # a known user's fresh rating is excluded from their next list at once
    known = client.get("/v1/recommendations", params={"user": 3, "k": 1}).json()
    top = _ids(known)[0]
    one = {"user": 3, "movieId": top, "rating": 1.0, "timestamp": 5}
    assert client.post("/v1/ratings", json=one, headers={"X-API-Key": KEY}).status_code == 201
    assert top not in _ids(client.get("/v1/recommendations", params={"user": 3, "k": 5}).json())
    metrics = client.get("/metrics").text
    assert "cinerec_feedback_rows 3.0" in metrics


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("get", "/v1/recommendations", {"params": {"user": "abc"}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "k": -1}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "k": 10**6}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "k": 10**30}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "risk_aversion": "nan"}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "exclude": "1,x"}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "exclude": "123456"}}, 400),
        ("get", "/v1/recommendations", {"params": {"user": 3, "model": "nope"}}, 404),
        ("get", "/v1/recommendations", {"params": {"user": 2**70}}, 400),
        ("get", "/v1/items/123456/similar", {}, 404),
        ("get", "/v1/items", {"params": {"search": "x" * 500}}, 400),
        ("get", "/v1/items/17/similar", {"params": {"model": "ease", "k": 0}}, 400),
        ("post", "/v1/recommendations", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", "/v1/recommendations", {"json": {"history": [{"movieId": 7, "rating": "five"}]}}, 422),
        ("post", "/v1/recommendations", {"json": {"history": [{"movieId": 7, "rating": 50}]}}, 400),
        ("post", "/v1/recommendations", {"json": {"history": [{"movieId": 8, "rating": 4}]}}, 400),
        ("post", "/v1/recommendations", {"json": {"histroy": []}}, 422),
        ("post", "/v1/recommendations", {"json": [1, 2, 3]}, 422),
        ("post", "/v1/recommendations", {"content": b"[" * 100_000, "headers": {"content-type": "application/json"}}, 413),
        ("post", "/v1/recommendations/batch", {"json": {"requests": [{"user": 1}] * 300}}, 400),
        ("post", "/v1/ratings", {"json": {"user": 1, "movieId": 7, "rating": 4}}, 401),
        ("delete", "/v1/recommendations", {}, 405),
        ("get", "/v1/nothing-here", {}, 404),
    ],
)
def test_bad_requests_are_clear_4xx_json(client, method, url, kwargs, status):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["message"] and body["error"]["code"] and body["request_id"]


def test_bad_ratings_are_refused_and_nothing_is_stored(client, service):
    h = {"X-API-Key": KEY}
    for row in ({"user": 1, "movieId": 8, "rating": 4},       # unknown movie
                {"user": 1, "movieId": 7, "rating": 9},       # off the scale
                {"user": 1, "movieId": 7, "rating": 4, "timestamp": -5}):
        r = client.post("/v1/ratings", json={"ratings": [{"user": 1, "movieId": 7, "rating": 3}, row]}, headers=h)
        assert 400 <= r.status_code < 500, r.text
    assert service.store.count() == 0  # a refused batch stores none of its rows


def test_search_is_not_sql(client, service):
    r = client.get("/v1/items", params={"search": "'; DROP TABLE ratings; --"})
    assert r.status_code == 200 and r.json()["items"] == []
    assert service.store.count() == 0


def test_health_ready_metrics_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    client.get("/v1/recommendations", params={"user": 3})
    text = client.get("/metrics").text
    assert 'cinerec_requests_total{method="GET",route="/v1/recommendations",status="200"}' in text
    assert 'cinerec_request_seconds_bucket{le="0.005",route="/v1/recommendations"}' in text
    assert 'cinerec_model_load_seconds{model="svd"}' in text
    spec = client.get("/openapi.json").json()
    assert {"/v1/recommendations", "/v1/ratings", "/v1/items/{movie_id}/similar"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_request_id_is_passed_through(client):
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_reload_swaps_models_without_failing_requests(client, service, models):
    assert client.post("/v1/admin/reload").status_code == 401
    errors: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get("/v1/recommendations", params={"user": 3, "k": 3})
            if r.status_code != 200:
                errors.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    before = service.served("svd").model
    for _ in range(3):
        assert client.post("/v1/admin/reload", headers={"X-API-Key": KEY}).status_code == 200
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert service.served("svd").model is not before and service.reloads == 4


def test_a_broken_reload_keeps_the_old_models(client, service, models, tmp_path):
    import shutil

    copy = tmp_path / "svd-copy"
    shutil.copytree(models["svd"], copy)
    svc = RecommendationService(ServiceConfig({"svd": copy}))
    app = TestClient(create_app(svc, api_key=KEY, access_log=False))
    (copy / "model.safetensors").write_bytes(b"garbage")
    r = app.post("/v1/admin/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 400 and "svd" in r.json()["error"]["message"]
    assert app.get("/v1/recommendations", params={"user": 3}).status_code == 200


def test_no_key_configured_means_no_writes(service, monkeypatch):
    monkeypatch.delenv("CINEREC_API_KEY", raising=False)
    c = TestClient(create_app(service, access_log=False))
    r = c.post("/v1/ratings", json={"user": 1, "movieId": 7, "rating": 4}, headers={"X-API-Key": ""})
    assert r.status_code == 401 and "no API key" in r.json()["error"]["message"]
