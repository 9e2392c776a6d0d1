"""StreamAudioFunction: GET|HEAD /api/audio/{filename}, the device route.

An ASGI app run by uvicorn behind the Lambda Web Adapter (run.sh), so the response streams;
the local server mounts the same app.
"""

from smart_stream.bootstrap import services
from smart_stream.device.file_route import create_stream_app

app = create_stream_app(lambda: services().device)
