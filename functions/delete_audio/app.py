"""DeleteAudioFunction: DELETE /api/audio/{filename}, the object and its record."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_stream import library
from smart_stream.api import create_api, json_response, logger, path_param

app = create_api()


@app.delete("/api/audio/<filename>")
def delete_audio(filename: str):
    library.delete_audio(path_param(app, "filename"))
    return json_response(204, None)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
