"""SearchAudioFunction: GET /api/audio/search?q=, over names, tags and transcripts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_stream import library
from smart_stream.api import create_api, json_response, logger, query_param, request_base

app = create_api()


@app.get("/api/audio/search")
def search_audio():
    found = library.search_audio(query_param(app, "q", "query"), request_base=request_base(app))
    return json_response(200, found)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
