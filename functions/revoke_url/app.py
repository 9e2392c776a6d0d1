"""RevokeUrlFunction: POST /api/streams/{name}/revoke-url and /api/audio/{filename}/revoke-url
issue a new device credential; the old URL answers 403 from then on."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services, writes=True)


@app.post("/api/streams/<name>/revoke-url")
def revoke_queue_url(name: str):
    root = services()
    record = root.queues.revoke_url(path_param(app, "name"))
    return json_response(200, Views(root.urls, request_base(app)).queue(record))


@app.post("/api/audio/<filename>/revoke-url")
def revoke_audio_url(filename: str):
    root = services()
    record = root.library.revoke_url(path_param(app, "filename"))
    return json_response(200, Views(root.urls, request_base(app)).audio_file(record))


lambda_handler = lambda_handler_for(app)
