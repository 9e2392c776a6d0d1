"""ListAudioFunction: GET /api/audio/list, a page of the catalogue."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import encode_token, list_query, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services)


@app.get("/api/audio/list")
def list_audio():
    query = list_query(app)
    root = services()
    page = root.library.page(limit=query.limit, after=query.after, statuses=query.statuses)
    next_token = encode_token(page.after) if page.after else None
    return json_response(200, Views(root.urls, request_base(app)).audio_list(page, next_token))


lambda_handler = lambda_handler_for(app)
