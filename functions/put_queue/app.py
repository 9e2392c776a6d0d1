"""PutQueueFunction: POST /api/streams/{name}/queue, create (201) or replace (200)."""

from smart_stream.domain.records import QueueRequest
from smart_stream.http.api import (
    create_api,
    json_body,
    json_response,
    lambda_handler_for,
    path_param,
    request_base,
)
from smart_stream.services import queues

app = create_api()


@app.post("/api/streams/<name>/queue")
def put_queue(name: str):
    created, queue = queues.put_queue(
        path_param(app, "name"), json_body(app, QueueRequest), request_base=request_base(app)
    )
    return json_response(201 if created else 200, queue)


lambda_handler = lambda_handler_for(app)
