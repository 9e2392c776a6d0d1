"""RevokeUrlFunction: POST /api/streams/{name}/revoke-url and /api/audio/{filename}/revoke-url
issue a new device credential; the old URL answers 403 from then on."""

from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    path_param,
    request_base,
)
from smart_stream.services import library, queues

app = create_api()


@app.post("/api/streams/<name>/revoke-url")
def revoke_queue_url(name: str):
    return json_response(
        200, queues.revoke_url(path_param(app, "name"), request_base=request_base(app))
    )


@app.post("/api/audio/<filename>/revoke-url")
def revoke_audio_url(filename: str):
    return json_response(
        200, library.revoke_url(path_param(app, "filename"), request_base=request_base(app))
    )


lambda_handler = lambda_handler_for(app)
