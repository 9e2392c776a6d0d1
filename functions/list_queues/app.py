"""ListQueuesFunction: GET /api/streams, every queue."""

from smart_stream.http.api import create_api, json_response, lambda_handler_for, request_base
from smart_stream.services import queues

app = create_api()


@app.get("/api/streams")
def list_queues():
    return json_response(200, queues.list_queues(request_base=request_base(app)))


lambda_handler = lambda_handler_for(app)
