"""RevokeUrlFunction: POST /api/streams/{name}/revoke-url and /api/audio/{filename}/revoke-url
issue a new device credential; the old URL answers 403 from then on."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import AudioFile, Queue, Views

router = Router()


@router.post(
    "/api/streams/<name>/revoke-url",
    summary="A new device credential for a queue's stream URL",
    responses=answers({200: ("The queue, with its new stream_url.", Queue)}, 400, 401, 404),
)
def revoke_queue_url(name: str):
    root = services()
    record = root.queues.revoke_url(path_param(app, "name"))
    return json_response(200, Views(root.urls, request_base(app)).queue(record))


@router.post(
    "/api/audio/<filename>/revoke-url",
    summary="A new device credential for a file's URL",
    responses=answers({200: ("The file, with its new url.", AudioFile)}, 400, 401, 404),
)
def revoke_audio_url(filename: str):
    root = services()
    record = root.library.revoke_url(path_param(app, "filename"))
    return json_response(200, Views(root.urls, request_base(app)).audio_file(record))


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
