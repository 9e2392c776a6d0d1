"""GenerateTtsFunction: POST /api/audio/generate-tts, a story spoken into the library."""

from smart_stream.http.api import (
    create_api,
    json_body,
    json_response,
    lambda_handler_for,
    request_base,
)
from smart_stream.services import tts

app = create_api()


@app.post("/api/audio/generate-tts")
def generate_tts():
    request = json_body(app, tts.TtsRequest)
    return json_response(201, tts.generate_tts(request, request_base=request_base(app)))


lambda_handler = lambda_handler_for(app)
