"""UploadUrlFunction: POST /api/audio/upload-url, a presigned POST for large files."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_stream import library
from smart_stream.api import create_api, json_body, json_response, logger, request_base
from smart_stream.models import UploadUrlRequest

app = create_api()


@app.post("/api/audio/upload-url")
def upload_url():
    request = json_body(app, UploadUrlRequest)
    return json_response(201, library.create_upload_url(request, request_base=request_base(app)))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
