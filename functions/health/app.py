"""HealthFunction: GET /api/health, open to all, touches nothing."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import Health

router = Router(public=True)


@router.get("/api/health", summary="Liveness", responses=answers({200: ("Alive.", Health)}))
def health():
    return json_response(200, Health())


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
