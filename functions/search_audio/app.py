"""SearchAudioFunction: GET /api/audio/search?q=, over names, tags and transcripts."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import SearchResult, Views

router = Router()


@router.get(
    "/api/audio/search",
    summary="Files whose name, tags or transcript contain the words (any case)",
    responses=answers({200: ("What matched.", SearchResult)}, 400, 401),
)
def search_audio(
    q: Annotated[str | None, Query(description="What to look for.")] = None,
    query: Annotated[str | None, Query(description="The same as q.")] = None,
):
    root = services()
    found = root.library.search(q if q is not None else query or "")
    return json_response(200, Views(root.urls, request_base(app)).search_result(found))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
