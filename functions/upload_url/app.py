"""UploadUrlFunction: POST /api/audio/upload-url, a presigned POST for large files."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import UploadUrlRequest, UploadUrlResponse, upload_url_response

router = Router()


@router.post(
    "/api/audio/upload-url",
    summary="A form to upload a large file (up to 5 GB) straight to storage",
    responses=answers(
        {201: ("The form: send every field, then the file.", UploadUrlResponse)},
        400,
        401,
        409,
        413,
        415,
        422,
    ),
)
def upload_url(request: Annotated[UploadUrlRequest, Body()]):
    post = services().library.upload_url(
        request.filename, request.size, overwrite=request.overwrite, base_url=request_base(app)
    )
    return json_response(201, upload_url_response(post))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
