"""YotoCardFunction: GET (the MYO content JSON), POST (push to Yoto) and DELETE (remove from
Yoto) /api/streams/{name}/yoto-card."""

from smart_stream.bootstrap import services
from smart_stream.domain.errors import UnprocessableError
from smart_stream.http.requests import path_param, query_param, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services, writes=True)


def _chapters() -> bool:
    """?mode=stream (one track: the whole queue) or ?mode=chapters (a chapter per file)."""
    mode = query_param(app, "mode") or "stream"
    if mode not in ("stream", "chapters"):
        raise UnprocessableError("mode must be stream or chapters.")
    return mode == "chapters"


@app.get("/api/streams/<name>/yoto-card")
def card_content(name: str):
    root = services()
    record = root.queues.get(path_param(app, "name"))
    urls = root.urls.for_request(request_base(app))
    content = root.yoto_cards.content(record, urls, chapters=_chapters())
    return json_response(200, content)


@app.post("/api/streams/<name>/yoto-card")
def push_card(name: str):
    root = services()
    urls = root.urls.for_request(request_base(app))
    created, record = root.yoto_cards.push(path_param(app, "name"), urls, chapters=_chapters())
    return json_response(201 if created else 200, Views(root.urls, request_base(app)).queue(record))


@app.delete("/api/streams/<name>/yoto-card")
def remove_card(name: str):
    services().yoto_cards.remove(path_param(app, "name"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
