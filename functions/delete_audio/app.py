"""DeleteAudioFunction: DELETE /api/audio/{filename}, the object and its record."""

from smart_stream.http.api import create_api, flag, json_response, lambda_handler_for, path_param
from smart_stream.services import library

app = create_api()


@app.delete("/api/audio/<filename>")
def delete_audio(filename: str):
    library.delete_audio(path_param(app, "filename"), force=flag(app, "force"))
    return json_response(204, None)


lambda_handler = lambda_handler_for(app)
