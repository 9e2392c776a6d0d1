"""GetQueueFunction: GET /api/streams/{name}/queue."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import Queue, Views

router = Router()


@router.get(
    "/api/streams/<name>/queue",
    summary="One queue",
    responses=answers({200: ("The queue.", Queue)}, 400, 401, 404),
)
def get_queue(name: str):
    root = services()
    record = root.queues.get(path_param(app, "name"))
    return json_response(200, Views(root.urls, request_base(app)).queue(record))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
