"""UploadAudioFunction: POST /api/audio/upload, one MP3 of up to 4 MB as multipart."""

import base64

from smart_stream.http.api import create_api, flag, json_response, lambda_handler_for, request_base
from smart_stream.http.multipart import parse_upload
from smart_stream.services import library

app = create_api()


@app.post("/api/audio/upload")
def upload_audio():
    event = app.current_event
    # HTTP API hands binary and multipart bodies over base64-encoded.
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    upload = parse_upload(event.headers.get("content-type", ""), body)
    audio = library.upload_audio(
        upload.filename,
        upload.source,
        upload.size,
        overwrite=flag(app, "overwrite"),
        request_base=request_base(app),
    )
    return json_response(201, audio)


lambda_handler = lambda_handler_for(app)
