"""The gRPC transport: a real server on 127.0.0.1 (a free port) over a real service, real
saved artifacts and a real SQLite store, driven by the real client and by a bare stub."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

grpc = pytest.importorskip("grpc")

from google.protobuf import descriptor_pb2  # noqa: E402

from cinerec.errors import ConfigError, NotFound, ServiceError, Unauthorized  # noqa: E402
from cinerec.serving.grpc import cinerec_pb2 as pb  # noqa: E402
from cinerec.serving.grpc import cinerec_pb2_grpc as pb_grpc  # noqa: E402
from cinerec.serving.grpc.client import RecommenderClient  # noqa: E402
from cinerec.serving.grpc.server import start_grpc_server  # noqa: E402
from cinerec.serving.service import (  # noqa: E402
    HistoryEntry,
    RecommendationService,
    RecommendRequest,
    ServiceConfig,
)
from cinerec.serving.store import FeedbackStore  # noqa: E402
from tests.serving.artifacts import save_models  # noqa: E402

KEY = "grpc-test-key"
SRC = Path(__file__).resolve().parents[2] / "src"
HISTORY = [{"movieId": 7, "rating": 5}, {"movieId": 17, "rating": 4.5}, {"movieId": 27, "rating": 1}]


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    return save_models(tmp_path_factory.mktemp("grpc-artifacts"))  # svd and ease


@pytest.fixture
def service(models, tmp_path) -> RecommendationService:
    store = FeedbackStore.open(tmp_path / "feedback.db")
    yield RecommendationService(ServiceConfig(models), store=store)
    store.close()


def _serve(service, **kw):
    server = start_grpc_server(service, "127.0.0.1", 0, **kw)
    return server, f"127.0.0.1:{server.cinerec_port}"


@pytest.fixture
def target(service):
    server, address = _serve(service, api_key=KEY)
    yield address
    server.stop(None).wait()


@pytest.fixture
def client(target):
    with RecommenderClient(target, api_key=KEY, timeout=30) as c:
        yield c


@pytest.fixture
def anonymous(target):
    with RecommenderClient(target, timeout=30) as c:
        yield c


def _ids(answer: dict) -> list[int]:
    return [it["movieId"] for it in answer["items"]]


def test_generated_code_matches_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    out = tmp_path / "cinerec.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{SRC}", f"--descriptor_set_out={out}",
         str(SRC / "cinerec/serving/grpc/cinerec.proto")],
        check=True, capture_output=True,
    )
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    _drop_json_names(compiled.message_type)  # protoc adds them to descriptor sets only
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert compiled == committed, "cinerec.proto changed: regenerate (src/cinerec/serving/grpc/GENERATE.md)"
    services = {s.name: [m.name for m in s.method] for s in committed.service}
    assert services == {"Recommender": ["Recommend", "RecommendBatch", "Similar", "Search", "Item", "Explain",
                                        "Rate", "Reload", "Health", "Models", "Ping"]}
    assert committed.package == "cinerec.v1"


def _drop_json_names(messages) -> None:
    for m in messages:
        for f in m.field:
            f.ClearField("json_name")
        _drop_json_names(m.nested_type)


def test_known_user_gets_what_the_service_answers(client, service):
    answer = client.recommend(3, k=5)
    assert answer == service.recommend(RecommendRequest(user=3, k=5))
    assert answer["basis"] == "model" and answer["model"] == "svd" and len(answer["items"]) == 5
    m = service.served("svd")
    direct = m.model.recommend(m.catalogue.user_index(3), 5)
    assert _ids(answer) == [int(m.catalogue.item_ids.raw(int(i))) for i in direct.items]
    first = answer["items"][0]
    assert first["title"].startswith("Movie ") and first["genres"] and first["predicted_rating"] is not None
    why = first["explanation"]
    # structured as well as text: the svd breakdown's parts add up to its total
    assert why["kind"] == "score_breakdown" and why["text"]
    assert sum(p["value"] for p in why["parts"]) == pytest.approx(why["total"], abs=1e-6)


def test_ranking_model_has_no_predicted_rating_and_its_own_explanation(client, service):
    answer = client.recommend(3, k=5, model="ease")
    assert answer == service.recommend(RecommendRequest(user=3, k=5, model="ease"))
    assert answer["model"] == "ease" and all(it["predicted_rating"] is None for it in answer["items"])
    kinds = {it["explanation"]["kind"] for it in answer["items"]}
    assert kinds == {"because_you_rated"}
    refs = answer["items"][0]["explanation"]["items"]
    assert refs and all({"item_id", "title", "weight"} <= set(r) for r in refs)
    no_why = client.recommend(3, k=5, model="ease", explain=False)
    assert _ids(no_why) == _ids(answer) and all(it["explanation"] is None for it in no_why["items"])


def test_history_folds_in_a_visitor(client, service):
    answer = client.recommend(history=HISTORY, k=5)
    assert answer["basis"] == "fold-in" and answer["user"] is None
    assert not {7, 17, 27} & set(_ids(answer))
    expected = service.recommend(RecommendRequest(
        history=tuple(HistoryEntry(h["movieId"], h["rating"]) for h in HISTORY), k=5))
    assert answer == expected
    as_tuples = client.recommend(history=[(7, 5.0), (17, 4.5), (27, 1.0, 1_000)], k=5)
    assert _ids(as_tuples) == _ids(answer)


def test_options_reach_the_service(client):
    base = client.recommend(3, k=5)
    top = _ids(base)[0]
    assert top not in _ids(client.recommend(3, k=5, exclude=[top]))
    only = client.recommend(3, k=5, candidates=[7, 17, 27])
    assert set(_ids(only)) <= {7, 17, 27}
    nothing = client.recommend(3, k=5, candidates=[])  # an empty list is not "no restriction"
    assert nothing["items"] == []
    seen = client.recommend(3, k=60, exclude_seen=False)
    assert len(seen["items"]) > len(client.recommend(3, k=60)["items"])


def test_unknown_user_gets_the_explained_fallback(client):
    answer = client.recommend(424242)
    assert answer["basis"] == "fallback" and answer["user"] == 424242 and len(answer["items"]) == 10
    assert answer["fallback"]["kind"] == "fallback" and "unknown user" in answer["fallback"]["text"]
    assert answer["fallback"]["reason"]


def test_batch_answers_each_request(client):
    results = client.recommend_batch([
        {"user": 3, "k": 3}, {"history": HISTORY, "k": 3}, {"user": 999_999, "k": 3, "model": "ease"},
    ])["results"]
    assert [r["basis"] for r in results] == ["model", "fold-in", "fallback"]
    assert [r["model"] for r in results] == ["svd", "svd", "ease"]
    assert results[0] == client.recommend(3, k=3)


def test_similar_search_explain_models_health(client, service):
    sim = client.similar(17, k=4)
    assert sim == service.similar(17, 4)
    assert sim["movie"]["movieId"] == 17 and len(sim["items"]) == 4 and 17 not in _ids(sim)
    hits = client.search("movie 17")
    assert hits == service.search("movie 17") and hits["items"][0]["movieId"] == 17
    assert client.item(17) == service.item(17) and client.item(17)["n_ratings"] > 0
    assert client.item(17, model="ease") == service.item(17, "ease")
    why = client.explain(3, 17)
    assert why == service.explain(3, 17)
    assert why["item"]["movieId"] == 17 and why["item"]["explanation"]["text"]
    models = client.models()
    assert models["default"] == "svd" and [m["name"] for m in models["models"]] == ["svd", "ease"]
    assert models == {"default": service.default_model, "models": service.models()}
    assert client.health() == {"status": "ok", "ready": True, "models": ["ease", "svd"], "store": True}
    assert client.ping() == {"pong": True}


def test_ratings_need_the_key_are_idempotent_and_reach_the_next_list(client, anonymous, target, service):
    user = 777_001  # new: the fallback until they rate
    assert client.recommend(user)["basis"] == "fallback"
    rows = [{"user": user, "movieId": 7, "rating": 5, "timestamp": 100},
            {"user": user, "movieId": 17, "rating": 4, "timestamp": 101}]
    with pytest.raises(Unauthorized) as no_key:
        anonymous.rate(rows)
    assert no_key.value.grpc_code == grpc.StatusCode.UNAUTHENTICATED and no_key.value.status == 401
    with RecommenderClient(target, api_key="wrong") as wrong, pytest.raises(Unauthorized):
        wrong.rate(rows)
    assert service.store.count() == 0
    assert client.rate(rows) == {"stored": 2, "duplicates": 0}
    assert client.rate(rows) == {"stored": 0, "duplicates": 2}  # a re-send is recognised
    assert service.store.count() == 2
    after = client.recommend(user)
    assert after["basis"] == "fold-in" and not {7, 17} & set(_ids(after))
    # a known user's fresh rating leaves their very next list
    top = _ids(client.recommend(3, k=1))[0]
    assert client.rate({"user": 3, "movieId": top, "rating": 1.0, "timestamp": 5})["stored"] == 1
    assert top not in _ids(client.recommend(3, k=5))


def test_bearer_token_is_accepted(target, service):
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        req = pb.RateRequest(ratings=[pb.Rating(user=5, movie_id=7, rating=4.0, timestamp=9)])
        ans = stub.Rate(req, metadata=(("authorization", f"Bearer {KEY}"),), timeout=30)
        assert (ans.stored, ans.duplicates) == (1, 0)
    assert service.store.count() == 1


@pytest.mark.parametrize(
    ("call", "code", "short"),
    [
        (lambda c: c.recommend(3, k=-1), "INVALID_ARGUMENT", "bad_value"),
        (lambda c: c.recommend(3, k=0), "INVALID_ARGUMENT", "bad_value"),
        (lambda c: c.recommend(3, k=10**6), "INVALID_ARGUMENT", "bad_k"),
        (lambda c: c.recommend(3, risk_aversion=float("nan")), "INVALID_ARGUMENT", "bad_value"),
        (lambda c: c.recommend(3, exclude=[123456]), "INVALID_ARGUMENT", "unknown_movie"),
        (lambda c: c.recommend(3, model="nope"), "NOT_FOUND", "unknown_model"),
        (lambda c: c.recommend(history=[{"movieId": 8, "rating": 4}]), "INVALID_ARGUMENT", "unknown_movie"),
        (lambda c: c.recommend(history=[{"movieId": 7, "rating": 50}]), "INVALID_ARGUMENT", "bad_rating"),
        (lambda c: c.recommend_batch([{"user": 1}] * 300), "INVALID_ARGUMENT", "batch_too_large"),
        (lambda c: c.similar(123456), "NOT_FOUND", "unknown_movie"),
        (lambda c: c.similar(17, k=0, model="ease"), "INVALID_ARGUMENT", "bad_value"),
        (lambda c: c.similar(17, model="nope"), "NOT_FOUND", "unknown_model"),
        (lambda c: c.search("x" * 500), "INVALID_ARGUMENT", "search_too_long"),
        (lambda c: c.explain(3, 123456), "NOT_FOUND", "unknown_movie"),
        (lambda c: c.item(123456), "NOT_FOUND", "unknown_movie"),
        (lambda c: c.rate([]), "INVALID_ARGUMENT", "empty"),
        (lambda c: c.rate({"user": 1, "movieId": 7, "rating": 9}), "INVALID_ARGUMENT", "bad_rating"),
        (lambda c: c.rate({"user": 1, "movieId": 7, "rating": 4, "timestamp": -5}), "INVALID_ARGUMENT", "bad_value"),
    ],
)
def test_bad_requests_are_clear_grpc_errors(client, service, call, code, short):
    with pytest.raises(ServiceError) as err:
        call(client)
    e = err.value
    assert e.grpc_code == getattr(grpc.StatusCode, code) and e.code == short and str(e)
    assert isinstance(e, NotFound) == (code == "NOT_FOUND")
    assert e.request_id  # the server answered (not a client-side refusal)
    assert service.store.count() == 0


def test_values_protobuf_cannot_carry_are_refused_before_sending(client):
    for call in (lambda: client.recommend(2**70), lambda: client.recommend(3, k=10**30),
                 lambda: client.recommend(3, risk_aversion="high"),
                 lambda: client.recommend_batch([{"histroy": []}])):
        with pytest.raises(ServiceError) as err:
            call()
        assert err.value.status == 400 and err.value.code == "bad_value"
        assert not hasattr(err.value, "grpc_code")


def test_wire_status_metadata_and_request_id(target):
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Recommend(pb.RecommendRequest(user=3, k=10**6), timeout=30,
                           metadata=(("x-request-id", "abc-123"),))
        e = err.value
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "k must be <=" in e.details()
        assert dict(e.trailing_metadata()) == {"x-request-id": "abc-123", "cinerec-error-code": "bad_k"}
        ok, call = stub.Recommend.with_call(pb.RecommendRequest(user=3), timeout=30)
        assert len(ok.items) == 10 and ok.HasField("user") and not ok.HasField("fallback")
        assert dict(call.trailing_metadata())["x-request-id"]  # one is made up when none is sent
        # an empty request is a valid one: no user, no history -> the explained fallback
        empty = stub.Recommend(pb.RecommendRequest(), timeout=30)
        assert empty.basis == "fallback" and not empty.HasField("user") and len(empty.items) == 10


def test_oversized_requests_are_resource_exhausted(service):
    server, address = _serve(service, api_key=KEY, max_message_bytes=4096)
    try:
        with RecommenderClient(address) as c:
            with pytest.raises(ServiceError) as err:
                c.recommend(history=[{"movieId": 7 + 10 * (j % 60), "rating": 3.0} for j in range(1000)])
            assert err.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.value.status == 413
            assert c.recommend(history=HISTORY)["basis"] == "fold-in"  # small ones still pass
    finally:
        server.stop(None).wait()


def test_no_key_configured_means_no_writes(service, monkeypatch):
    monkeypatch.delenv("CINEREC_API_KEY", raising=False)
    server, address = _serve(service)
    try:
        with RecommenderClient(address, api_key="") as c, pytest.raises(Unauthorized) as err:
            c.rate({"user": 1, "movieId": 7, "rating": 4})
        assert "no API key" in str(err.value)
    finally:
        server.stop(None).wait()
    monkeypatch.setenv("CINEREC_API_KEY", "from-env")
    server, address = _serve(service)
    try:
        with RecommenderClient(address, api_key="from-env") as c:
            assert c.rate({"user": 1, "movieId": 7, "rating": 4, "timestamp": 1})["stored"] == 1
    finally:
        server.stop(None).wait()


def test_a_service_without_store_refuses_ratings_as_failed_precondition(models):
    svc = RecommendationService(ServiceConfig(models))
    server, address = _serve(svc, api_key=KEY)
    try:
        with RecommenderClient(address, api_key=KEY) as c:
            with pytest.raises(ServiceError) as err:
                c.rate({"user": 1, "movieId": 7, "rating": 4})
            assert err.value.grpc_code == grpc.StatusCode.FAILED_PRECONDITION and err.value.code == "no_store"
            assert c.health()["store"] is True and c.health()["ready"] is True  # no store is not a broken store
    finally:
        server.stop(None).wait()


def test_reload_needs_the_key_and_swaps_models_without_failing_requests(client, anonymous, service):
    with pytest.raises(Unauthorized):
        anonymous.reload()
    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                anonymous.recommend(3, k=3)
            except Exception as e:  # collected: the assert below names it
                errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    before = service.served("svd").model
    try:
        for n in range(3):
            info = client.reload()
            assert info["reloads"] == 2 + n and [m["name"] for m in info["models"]] == ["svd", "ease"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert service.served("svd").model is not before


def test_a_broken_reload_keeps_the_old_models(models, tmp_path):
    import shutil

    copy = tmp_path / "svd-copy"
    shutil.copytree(models["svd"], copy)
    svc = RecommendationService(ServiceConfig({"svd": copy}))
    server, address = _serve(svc, api_key=KEY)
    try:
        with RecommenderClient(address, api_key=KEY) as c:
            (copy / "model.safetensors").write_bytes(b"garbage")
            with pytest.raises(ServiceError) as err:
                c.reload()
            assert err.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT and "svd" in str(err.value)
            assert c.recommend(3)["basis"] == "model"
    finally:
        server.stop(None).wait()


class _Broken(RecommendationService):
    """A service with a bug in one operation (what INTERNAL is for)."""

    def ready(self):
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_internal_logged_and_the_server_keeps_serving(models, caplog):
    svc = _Broken(ServiceConfig(models))
    server, address = _serve(svc, api_key=KEY)
    try:
        with RecommenderClient(address) as c:
            with caplog.at_level(logging.ERROR, logger="cinerec.serving"), pytest.raises(ServiceError) as err:
                c.health()
            assert err.value.grpc_code == grpc.StatusCode.INTERNAL and err.value.code == "internal"
            assert "a bug" not in str(err.value) and err.value.request_id in str(err.value)
            logged = [r for r in caplog.records if r.exc_info]
            assert logged and "a bug" in str(logged[0].exc_info[1])
            assert c.recommend(3)["basis"] == "model"
    finally:
        server.stop(None).wait()


def test_ports(service):
    server, address = _serve(service)
    try:
        assert server.cinerec_port > 0
        with pytest.raises(ConfigError, match="--grpc-port"):
            start_grpc_server(service, "127.0.0.1", server.cinerec_port)
    finally:
        server.stop(None).wait()
    with pytest.raises(ConfigError):
        start_grpc_server(service, "127.0.0.1", 70000)
    with RecommenderClient(address, timeout=5) as c, pytest.raises(ServiceError) as err:
        c.health()  # the server is gone
    assert err.value.grpc_code == grpc.StatusCode.UNAVAILABLE and address in str(err.value)


def test_every_explanation_kind_travels_typed_and_comes_back_as_the_rest_json(service):
    from cinerec.models import explain as ex
    from cinerec.serving.grpc import client as grpc_client
    from cinerec.serving.grpc import server as grpc_server

    examples = [
        ex.BecauseYouRated((1, 2), (0.5, 0.25), "contribution"),
        ex.SimilarUsers(3, 1.5),
        ex.ScoreShares(0.6, 0.4, 0.8, "attention"),
        ex.ScoreShares(0.7, 0.3),  # no strength: None both ways
        ex.ScoreBreakdown((("global mean", 3.5), ("movie bias", -0.25)), 3.25),
        ex.Popularity(12, 3.75),
        ex.GroupTaste("25-34, F", 4.25, 212, 0.5),
        ex.GroupTaste("", 3.5, 7),  # demographics unknown, no user bias: None both ways
        ex.Fallback("unknown user"),
    ]
    assert {e.kind for e in examples} == set(ex.KINDS)  # a new kind needs its message in the proto
    catalogue = service.served("svd").catalogue
    for e in examples:
        d = e.to_dict(catalogue)
        wire = pb.RecommendedItem(explanation=grpc_server._explanation(d)).SerializeToString()
        back = grpc_client._explanation(pb.RecommendedItem.FromString(wire), "explanation")
        assert back == d and [type(v) for v in back.values()] == [type(v) for v in d.values()]
