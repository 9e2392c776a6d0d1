"""YotoCallbackFunction: GET /api/yoto/callback, where Yoto sends the parent's browser back
after its consent page. Open (a browser following a redirect sends no token): the OAuth
state, single-use and bound to its PKCE verifier, is what protects it. It always answers
with a redirect to the page, which reads how it went from the fragment."""

from aws_lambda_powertools.event_handler import Response

from smart_stream.bootstrap import services
from smart_stream.http.requests import query_param
from smart_stream.http.resolver import create_api, lambda_handler_for

app = create_api(services, public=True, writes=True)


@app.get("/api/yoto/callback")
def callback():
    target = services().yoto_signin.callback(
        code=query_param(app, "code"),
        state=query_param(app, "state"),
        error=query_param(app, "error"),
    )
    # The address it came from carries the one-time code: never cached, never referred.
    headers = {"Location": target, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return Response(status_code=302, headers=headers, body="")


lambda_handler = lambda_handler_for(app)
