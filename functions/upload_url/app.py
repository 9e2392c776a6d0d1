"""UploadUrlFunction: POST /api/audio/upload-url, a presigned POST for large files."""

from smart_stream.domain.records import UploadUrlRequest
from smart_stream.http.api import (
    create_api,
    json_body,
    json_response,
    lambda_handler_for,
    request_base,
)
from smart_stream.services import library

app = create_api()


@app.post("/api/audio/upload-url")
def upload_url():
    request = json_body(app, UploadUrlRequest)
    return json_response(201, library.create_upload_url(request, request_base=request_base(app)))


lambda_handler = lambda_handler_for(app)
