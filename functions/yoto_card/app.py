"""YotoCardFunction: GET (the MYO content JSON), POST (push to Yoto) and DELETE (remove from
Yoto) /api/streams/{name}/yoto-card."""

from smart_stream.domain.errors import UnprocessableError
from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    path_param,
    query_param,
    request_base,
)
from smart_stream.services import queues, yoto

app = create_api()


def _chapters() -> bool:
    """?mode=stream (one track: the whole queue) or ?mode=chapters (a chapter per file)."""
    mode = query_param(app, "mode") or "stream"
    if mode not in ("stream", "chapters"):
        raise UnprocessableError("mode must be stream or chapters.")
    return mode == "chapters"


@app.get("/api/streams/<name>/yoto-card")
def card_content(name: str):
    record = queues.get_record(path_param(app, "name"))
    content = yoto.card_content(record, request_base=request_base(app), chapters=_chapters())
    return json_response(200, content)


@app.post("/api/streams/<name>/yoto-card")
def push_card(name: str):
    created, queue = yoto.push_card(
        path_param(app, "name"), request_base=request_base(app), chapters=_chapters()
    )
    return json_response(201 if created else 200, queue)


@app.delete("/api/streams/<name>/yoto-card")
def remove_card(name: str):
    yoto.remove_card(path_param(app, "name"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
