"""AudioMetadataFunction: GET /api/audio/{filename}/metadata, whatever the file's status."""

from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    path_param,
    request_base,
)
from smart_stream.services import library

app = create_api()


@app.get("/api/audio/<filename>/metadata")
def audio_metadata(filename: str):
    audio = library.get_audio(path_param(app, "filename"), request_base=request_base(app))
    return json_response(200, audio)


lambda_handler = lambda_handler_for(app)
