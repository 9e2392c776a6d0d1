"""YotoLoginFunction: POST /api/yoto/login starts Yoto's device-code sign-in; GET tells
whether it has finished (asking Yoto once)."""

from smart_stream.bootstrap import services
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for

app = create_api(services, writes=True)


@app.post("/api/yoto/login")
def start_login():
    return json_response(200, services().yoto_signin.start_login())


@app.get("/api/yoto/login")
def login_status():
    return json_response(200, services().yoto_signin.status())


lambda_handler = lambda_handler_for(app)
