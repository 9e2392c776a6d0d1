"""YotoCardFunction: GET (the MYO content JSON), POST (push to Yoto) and DELETE (remove from
Yoto) /api/streams/{name}/yoto-card."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.domain.errors import UnprocessableError
from smart_stream.http.openapi import answers
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import CardContent, Queue, Views

router = Router()
Mode = Annotated[
    str | None,
    Query(description="stream (default): one track, the whole queue; chapters: one per file."),
]


def _chapters(mode: str | None) -> bool:
    if (mode or "stream") not in ("stream", "chapters"):
        raise UnprocessableError("mode must be stream or chapters.")
    return mode == "chapters"


@router.get(
    "/api/streams/<name>/yoto-card",
    summary="The queue's Yoto MYO card content",
    responses=answers({200: ("The card's content JSON.", CardContent)}, 400, 401, 404, 409, 422),
)
def card_content(name: str, mode: Mode = None):
    root = services()
    record = root.queues.get(path_param(app, "name"))
    urls = root.urls.for_request(request_base(app))
    content = root.yoto_cards.content(record, urls, chapters=_chapters(mode))
    return json_response(200, content)


@router.post(
    "/api/streams/<name>/yoto-card",
    summary="Put the queue on a card in the parent's Yoto account (or update it)",
    responses=answers(
        {201: ("A new card.", Queue), 200: ("The same card, updated.", Queue)},
        400,
        401,
        404,
        409,
        422,
        502,
    ),
)
def push_card(name: str, mode: Mode = None):
    root = services()
    urls = root.urls.for_request(request_base(app))
    created, record = root.yoto_cards.push(path_param(app, "name"), urls, chapters=_chapters(mode))
    return json_response(201 if created else 200, Views(root.urls, request_base(app)).queue(record))


@router.delete(
    "/api/streams/<name>/yoto-card",
    summary="Remove the queue's card from the parent's Yoto account",
    responses=answers({204: ("Removed.", None)}, 400, 401, 404, 409, 502),
)
def remove_card(name: str):
    services().yoto_cards.remove(path_param(app, "name"))
    return json_response(204, None)


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
