"""PutQueueFunction: POST /api/streams/{name}/queue, create (201) or replace (200)."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import json_body, path_param, request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import QueueRequest, Views

app = create_api(services, writes=True)


@app.post("/api/streams/<name>/queue")
def put_queue(name: str):
    request = json_body(app, QueueRequest)
    root = services()
    created, record = root.queues.put(path_param(app, "name"), request.change())
    return json_response(201 if created else 200, Views(root.urls, request_base(app)).queue(record))


lambda_handler = lambda_handler_for(app)
