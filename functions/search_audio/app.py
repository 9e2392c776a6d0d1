"""SearchAudioFunction: GET /api/audio/search?q=, over names, tags and transcripts."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import query_param, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services)


@app.get("/api/audio/search")
def search_audio():
    root = services()
    found = root.library.search(query_param(app, "q", "query") or "")
    return json_response(200, Views(root.urls, request_base(app)).search_result(found))


lambda_handler = lambda_handler_for(app)
