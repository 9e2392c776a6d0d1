"""DeleteAudioFunction: DELETE /api/audio/{filename}, the object and its record."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import flag, path_param
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for

app = create_api(services, writes=True)


@app.delete("/api/audio/<filename>")
def delete_audio(filename: str):
    services().library.delete(path_param(app, "filename"), force=flag(app, "force"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
