"""DeleteQueueFunction: DELETE /api/streams/{name} (409 while it is on a Yoto card)."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import flag, path_param
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for

app = create_api(services, writes=True)


@app.delete("/api/streams/<name>")
def delete_queue(name: str):
    services().queues.delete(path_param(app, "name"), force=flag(app, "force"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
