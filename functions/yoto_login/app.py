"""YotoLoginFunction: the parent's Yoto sign-in. POST /api/yoto/authorize starts it (the
authorization code grant with PKCE: the page sends the browser to the address answered);
GET /api/yoto/login tells how it stands; DELETE /api/yoto/login signs out of Yoto;
POST /api/yoto/login starts the headless fallback (device code)."""

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.requests import request_base
from smart_stream.http.resolver import Router, create_api, json_response, lambda_handler_for
from smart_stream.http.views import Authorize, DeviceLogin, YotoLogin

router = Router()


@router.post(
    "/api/yoto/authorize",
    summary="Start Yoto's sign-in (authorization code with PKCE)",
    responses=answers({200: ("Where to send the browser.", Authorize)}, 401, 409),
)
def authorize():
    url = services().yoto_signin.authorize(request_base(app))
    return json_response(200, Authorize(authorize_url=url))


@router.get(
    "/api/yoto/login",
    summary="Whether the parent is signed in to Yoto, and the callback to register",
    responses=answers({200: ("The sign-in's state.", YotoLogin)}, 401, 502),
)
def login_status():
    return json_response(200, YotoLogin(**services().yoto_signin.status(request_base(app))))


@router.delete(
    "/api/yoto/login",
    summary="Sign out of Yoto (forget its tokens)",
    responses=answers({204: ("Signed out.", None)}, 401),
)
def sign_out():
    services().yoto_signin.sign_out()
    return json_response(204, None)


@router.post(
    "/api/yoto/login",
    summary="Headless fallback: Yoto's device-code sign-in (deprecated by Yoto)",
    responses=answers({200: ("The code to enter at Yoto's address.", DeviceLogin)}, 401, 409, 502),
)
def start_device_login():
    return json_response(200, DeviceLogin(**services().yoto_signin.start_login()))


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
