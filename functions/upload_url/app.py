"""UploadUrlFunction: POST /api/audio/upload-url, a presigned POST for large files."""

from smart_stream import library
from smart_stream.api import create_api, json_body, json_response, lambda_handler_for, request_base
from smart_stream.models import UploadUrlRequest

app = create_api()


@app.post("/api/audio/upload-url")
def upload_url():
    request = json_body(app, UploadUrlRequest)
    return json_response(201, library.create_upload_url(request, request_base=request_base(app)))


lambda_handler = lambda_handler_for(app)
