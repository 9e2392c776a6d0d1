"""UploadAudioFunction: POST /api/audio/upload, one audio file of up to 4 MB as multipart."""

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.http.multipart import parse_upload
from smart_stream.http.openapi import answers, multipart_upload
from smart_stream.http.requests import FLAG, flag, request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import AudioFile, Views, made_status

router = Router()


@router.post(
    "/api/audio/upload",
    summary="Upload one audio file of up to 4 MB (multipart field file)",
    responses=answers(
        {
            201: ("Stored as uploaded (a house-format MP3).", AudioFile),
            202: ("Accepted: converting in the background.", AudioFile),
        },
        400,
        401,
        409,
        413,
        415,
        422,
    ),
    openapi_extensions={"x-request-body": multipart_upload()},
)
def upload_audio(
    overwrite: Annotated[
        str | None, Query(description="Replace a file of that name: " + FLAG)
    ] = None,
):
    event = app.current_event
    # HTTP API hands binary and multipart bodies over base64-encoded.
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    upload = parse_upload(event.headers.get("content-type", ""), body)
    root = services()
    record = root.library.upload(
        upload.filename, upload.source, upload.size, overwrite=flag("overwrite", overwrite)
    )
    view = Views(root.urls, request_base(app)).audio_file(record)
    return json_response(made_status(record), view)


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
