"""DeleteQueueFunction: DELETE /api/streams/{name} (409 while it is on a Yoto card)."""

from smart_stream.http.api import create_api, flag, json_response, lambda_handler_for, path_param
from smart_stream.services import queues

app = create_api()


@app.delete("/api/streams/<name>")
def delete_queue(name: str):
    queues.delete_queue(path_param(app, "name"), force=flag(app, "force"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
