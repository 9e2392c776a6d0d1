"""ListQueuesFunction: GET /api/streams, every queue."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for
from smart_stream.http.views import Views

app = create_api(services)


@app.get("/api/streams")
def list_queues():
    root = services()
    return json_response(200, Views(root.urls, request_base(app)).queue_list(root.queues.all()))


lambda_handler = lambda_handler_for(app)
