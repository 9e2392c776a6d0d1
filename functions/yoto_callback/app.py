"""YotoCallbackFunction: GET /api/yoto/callback, where Yoto sends the parent's browser back
after its consent page. Open (a browser following a redirect sends no token): the OAuth
state, single-use and bound to its PKCE verifier, is what protects it. It always answers
with a redirect to the page, which reads how it went from the fragment."""

import logging
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.resolver import Router, create_api, lambda_handler_for

router = Router(public=True)
# Powertools logs a route's arguments at DEBUG: here they are the one-time code and the state.
logging.getLogger("aws_lambda_powertools.event_handler.api_gateway").setLevel(logging.INFO)


@router.get(
    "/api/yoto/callback",
    summary="Where Yoto sends the browser back (open: the OAuth state protects it)",
    responses=answers(
        {302: ("To /#yoto=signed-in, or /#yoto=error&reason=... with nothing changed.", None)}
    ),
)
def callback(
    code: Annotated[str | None, Query(description="The one-time code Yoto gives.")] = None,
    state: Annotated[str | None, Query(description="The state this API handed out.")] = None,
    error: Annotated[str | None, Query(description="Yoto's refusal (access_denied).")] = None,
):
    target = services().yoto_signin.callback(code=code, state=state, error=error)
    # The address it came from carries the one-time code: never cached, never referred.
    headers = {"Location": target, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return Response(status_code=302, headers=headers, body="")


app = create_api(services, router, writes=True)
lambda_handler = lambda_handler_for(app)
