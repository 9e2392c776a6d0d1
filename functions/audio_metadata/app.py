"""AudioMetadataFunction: GET /api/audio/{filename}/metadata, whatever the file's status."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services)


@app.get("/api/audio/<filename>/metadata")
def audio_metadata(filename: str):
    root = services()
    record = root.library.get(path_param(app, "filename"))
    return json_response(200, Views(root.urls, request_base(app)).audio_file(record))


lambda_handler = lambda_handler_for(app)
