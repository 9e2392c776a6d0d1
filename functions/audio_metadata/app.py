"""AudioMetadataFunction: GET /api/audio/{filename}/metadata, whatever the file's status."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_stream import library
from smart_stream.api import create_api, json_response, logger, path_param, request_base

app = create_api()


@app.get("/api/audio/<filename>/metadata")
def audio_metadata(filename: str):
    audio = library.get_audio(path_param(app, "filename"), request_base=request_base(app))
    return json_response(200, audio)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
