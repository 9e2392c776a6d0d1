"""AudioMetadataFunction: GET /api/audio/{filename}/metadata, whatever the file's status."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import AudioFile, Views

router = Router()


@router.get(
    "/api/audio/<filename>/metadata",
    summary="One file's metadata, whatever its status",
    responses=answers({200: ("The file.", AudioFile)}, 400, 401, 404),
)
def audio_metadata(filename: str):
    root = services()
    record = root.library.get(path_param(app, "filename"))
    return json_response(200, Views(root.urls, request_base(app)).audio_file(record))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
