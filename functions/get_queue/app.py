"""GetQueueFunction: GET /api/streams/{name}/queue."""

from smart_stream.http.api import (
    create_api,
    json_response,
    lambda_handler_for,
    path_param,
    request_base,
)
from smart_stream.services import queues

app = create_api()


@app.get("/api/streams/<name>/queue")
def get_queue(name: str):
    return json_response(
        200, queues.get_queue(path_param(app, "name"), request_base=request_base(app))
    )


lambda_handler = lambda_handler_for(app)
