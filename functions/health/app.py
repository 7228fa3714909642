"""Health function: liveness (touches nothing) and readiness (every backing service)."""

from litestar import Response, get
from litestar.openapi import ResponseSpec

from stage1.health.schemas import Liveness, Readiness
from stage1.health.service import readiness
from stage1.web.app import API_VERSION, create_app, make_handler


@get("/api/health", summary="Liveness", tags=["health"], sync_to_thread=False)
def health() -> Liveness:
    return Liveness(version=API_VERSION)


@get("/api/healthz", summary="Readiness of Postgres, QuestDB and the object store", tags=["health"],
     responses={503: ResponseSpec(Readiness, description="A backing service is down (named in the body)")},
     sync_to_thread=True)
def healthz() -> Response[Readiness]:
    result = readiness()
    return Response(result, status_code=200 if result.status == "ok" else 503)


app = create_app([health, healthz], title="Stage1 health")
handler = make_handler(app)
