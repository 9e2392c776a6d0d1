"""ListAudioFunction: GET /api/audio/list, a page of the catalogue."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import encode_token, list_query, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import AudioList, Views

router = Router()


@router.get(
    "/api/audio/list",
    summary="A page of the library, in filename order",
    responses=answers(
        {200: ("A page of files, and the token of the next.", AudioList)}, 400, 401, 422
    ),
)
def list_audio(
    limit: Annotated[
        str | None, Query(description="Files a page: a whole number from 1 (at most 1000).")
    ] = None,
    next_token: Annotated[
        str | None, Query(description="The next_token of the page before.")
    ] = None,
    status: Annotated[
        str | None,
        Query(
            description="Comma-separated statuses (pending, converting, ready, invalid) or "
            "all; default: pending, converting, ready."
        ),
    ] = None,
):
    query = list_query(limit, next_token, status)
    root = services()
    page = root.library.page(limit=query.limit, after=query.after, statuses=query.statuses)
    token = encode_token(page.after) if page.after else None
    return json_response(200, Views(root.urls, request_base(app)).audio_list(page, token))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
