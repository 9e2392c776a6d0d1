"""OpenApiFunction: GET /api/openapi.json, the API's OpenAPI 3.1 document, open to all (it
holds no secrets). The document is made from every function's routes by `make openapi`
(local_server/openapi.py) and shipped beside this handler; a test keeps it current."""

from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.resolver import Router, create_api, lambda_handler_for

router = Router(public=True)
SPEC = Path(__file__).resolve().parent / "openapi.json"


@router.get(
    "/api/openapi.json",
    summary="This document",
    responses=answers({200: ("The OpenAPI 3.1 document.", None)}),
)
def openapi_document():
    return Response(status_code=200, content_type="application/json", body=SPEC.read_text())


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
