"""GenerateTtsFunction: POST /api/audio/generate-tts, a story spoken into the library; GET
/api/tts/voices, the voices of the engine in use."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import AudioFile, TtsRequest, Views, VoiceList, made_status

router = Router()


@router.post(
    "/api/audio/generate-tts",
    summary="Speak a story into the library",
    responses=answers(
        {
            201: ("Spoken within the request.", AudioFile),
            202: ("A long story: converting in the background.", AudioFile),
        },
        400,
        401,
        409,
        413,
        422,
        502,
    ),
)
def generate_tts(request: Annotated[TtsRequest, Body()]):
    root = services()
    record = root.stories.generate(request.story())
    view = Views(root.urls, request_base(app)).audio_file(record)
    return json_response(made_status(record), view)


@router.get(
    "/api/tts/voices",
    summary="The speech engine in use and its voices",
    responses=answers({200: ("The voices.", VoiceList)}, 401, 502),
)
def voices():
    engine = services().speech
    return json_response(200, VoiceList.of(engine.name, engine.list_voices()))


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
