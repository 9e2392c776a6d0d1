"""ListAudioFunction: GET /api/audio/list, a page of the catalogue."""

from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    query_param,
    request_base,
)
from smart_stream.services import library

app = create_api()


@app.get("/api/audio/list")
def list_audio():
    files = library.list_audio(
        limit=query_param(app, "limit"),
        next_token=query_param(app, "next_token"),
        status=query_param(app, "status"),
        request_base=request_base(app),
    )
    return json_response(200, files)


lambda_handler = lambda_handler_for(app)
