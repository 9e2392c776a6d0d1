"""PutQueueFunction: POST /api/streams/{name}/queue, create (201) or replace (200)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import Queue, QueueRequest, Views

router = Router()


@router.post(
    "/api/streams/<name>/queue",
    summary="Create or replace a queue",
    responses=answers({201: ("Created.", Queue), 200: ("Replaced.", Queue)}, 400, 401, 404, 422),
)
def put_queue(name: str, request: Annotated[QueueRequest, Body()]):
    root = services()
    created, record = root.queues.put(path_param(app, "name"), request.change())
    return json_response(201 if created else 200, Views(root.urls, request_base(app)).queue(record))


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
