"""YotoLoginFunction: POST /api/yoto/login starts Yoto's device-code sign-in; GET tells
whether it has finished (asking Yoto once)."""

from smart_stream.http.api import create_api, json_response, lambda_handler_for
from smart_stream.services import yoto

app = create_api()


@app.post("/api/yoto/login")
def start_login():
    return json_response(200, yoto.start_login())


@app.get("/api/yoto/login")
def login_status():
    return json_response(200, yoto.login_status())


lambda_handler = lambda_handler_for(app)
