"""gRPC transport of the recommendation service (package ``cinerec.v1``, `cinerec.proto`).

- `cinerec.serving.grpc.server`: ``start_grpc_server(service, ...)`` serves a
  `RecommendationService` with the same operations, API-key rule and error mapping as
  the REST layer;
- `cinerec.serving.grpc.client`: ``RecommenderClient(target)`` answers in plain dicts
  shaped like the REST JSON;
- ``cinerec_pb2*`` are generated (see GENERATE.md); nothing here is imported eagerly, so
  the client does not load the models' stack.
"""
