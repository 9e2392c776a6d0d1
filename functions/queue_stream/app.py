"""QueueStreamFunction: GET|HEAD /api/streams/{name}/stream.mp3, a queue as one MP3.

An ASGI app run by uvicorn behind the Lambda Web Adapter (run.sh), so the response streams;
the local server mounts the same app.
"""

from smart_stream.bootstrap import services
from smart_stream.device.queue_route import create_queue_stream_app

app = create_queue_stream_app(lambda: services().device)
