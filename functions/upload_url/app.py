"""UploadUrlFunction: POST /api/audio/upload-url, a presigned POST for large files."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import json_body, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import UploadUrlRequest, upload_url_response

app = create_api(services)


@app.post("/api/audio/upload-url")
def upload_url():
    request = json_body(app, UploadUrlRequest)
    post = services().library.upload_url(
        request.filename, request.size, overwrite=request.overwrite, base_url=request_base(app)
    )
    return json_response(201, upload_url_response(post))


lambda_handler = lambda_handler_for(app)
