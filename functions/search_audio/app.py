"""SearchAudioFunction: GET /api/audio/search?q=, over names, tags and transcripts."""

from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    query_param,
    request_base,
)
from smart_stream.services import library

app = create_api()


@app.get("/api/audio/search")
def search_audio():
    found = library.search_audio(query_param(app, "q", "query"), request_base=request_base(app))
    return json_response(200, found)


lambda_handler = lambda_handler_for(app)
