"""DeleteQueueFunction: DELETE /api/streams/{name} (409 while it is on a Yoto card)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import FLAG, flag, path_param
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for

router = Router()


@router.delete(
    "/api/streams/<name>",
    summary="Delete a queue (409 while it is on a Yoto card, unless force)",
    responses=answers({204: ("Deleted.", None)}, 400, 401, 404, 409, 422),
)
def delete_queue(
    name: str,
    force: Annotated[str | None, Query(description="Delete it even on a card: " + FLAG)] = None,
):
    services().queues.delete(path_param(app, "name"), force=flag("force", force))
    return json_response(204, None)


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
