"""ListQueuesFunction: GET /api/streams, every queue."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import QueueList, Views

router = Router()


@router.get(
    "/api/streams",
    summary="Every queue",
    responses=answers({200: ("The queues.", QueueList)}, 401),
)
def list_queues():
    root = services()
    return json_response(200, Views(root.urls, request_base(app)).queue_list(root.queues.all()))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
