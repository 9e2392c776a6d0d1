"""UploadAudioFunction: POST /api/audio/upload, one audio file of up to 4 MB as multipart."""

import base64

from smart_stream.bootstrap import services
from smart_stream.domain.records import AudioStatus
from smart_stream.http.multipart import parse_upload
from smart_stream.http.requests import flag, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services, writes=True)


@app.post("/api/audio/upload")
def upload_audio():
    event = app.current_event
    # HTTP API hands binary and multipart bodies over base64-encoded.
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    upload = parse_upload(event.headers.get("content-type", ""), body)
    root = services()
    record = root.library.upload(
        upload.filename, upload.source, upload.size, overwrite=flag(app, "overwrite")
    )
    # 201: stored as uploaded; 202: accepted, and being converted in the background.
    status = 202 if record.status is AudioStatus.CONVERTING else 201
    return json_response(status, Views(root.urls, request_base(app)).audio_file(record))


lambda_handler = lambda_handler_for(app)
