"""GenerateTtsFunction: POST /api/audio/generate-tts, a story spoken into the library; GET
/api/tts/voices, the voices of the engine in use."""

from smart_stream.bootstrap import services
from smart_stream.domain.records import AudioStatus
from smart_stream.http.requests import json_body, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import TtsRequest, Views

app = create_api(services, writes=True)


@app.post("/api/audio/generate-tts")
def generate_tts():
    request = json_body(app, TtsRequest)
    root = services()
    record = root.stories.generate(request.story())
    # 201: spoken within the request; 202: a long story, spoken in the background.
    status = 202 if record.status is AudioStatus.CONVERTING else 201
    return json_response(status, Views(root.urls, request_base(app)).audio_file(record))


@app.get("/api/tts/voices")
def voices():
    engine = services().speech
    listed = [{"id": v.id, "name": v.name, "language": v.language} for v in engine.list_voices()]
    return json_response(200, {"engine": engine.name, "voices": listed})


lambda_handler = lambda_handler_for(app)
