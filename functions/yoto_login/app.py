"""YotoLoginFunction: the parent's Yoto sign-in. POST /api/yoto/authorize starts it (the
authorization code grant with PKCE: the page sends the browser to the address answered);
GET /api/yoto/login tells how it stands; DELETE /api/yoto/login signs out of Yoto;
POST /api/yoto/login starts the headless fallback (device code)."""

from smart_stream.bootstrap import services
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for

app = create_api(services, writes=True)


@app.post("/api/yoto/authorize")
def authorize():
    url = services().yoto_signin.authorize(request_base(app))
    return json_response(200, {"authorize_url": url})


@app.get("/api/yoto/login")
def login_status():
    return json_response(200, services().yoto_signin.status(request_base(app)))


@app.delete("/api/yoto/login")
def sign_out():
    services().yoto_signin.sign_out()
    return json_response(204, None)


@app.post("/api/yoto/login")
def start_device_login():
    return json_response(200, services().yoto_signin.start_login())


lambda_handler = lambda_handler_for(app)
