"""PageFunction: the parents' page. GET / (index.html) and GET /assets/{file} (its scripts,
styles and icon), open to all: the page asks for the management token itself and sends it
only in API calls' Authorization header."""

from pathlib import Path

from smart_stream.bootstrap import services
from smart_stream.http.openapi import answers
from smart_stream.http.page import INDEX, PageFiles, page_policy
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import Router, create_api, lambda_handler_for

router = Router(public=True)
files = PageFiles(Path(__file__).resolve().parent / "static")
SERVED = {
    200: ("The file, with the page's security headers.", "text/html"),
    304: ("Unchanged.", None),
}


def _answer(name: str):
    root = services()
    policy = page_policy(root.urls, root.storage, request_base(app))
    return files.response(
        name, policy=policy, if_none_match=app.current_event.headers.get("if-none-match")
    )


@router.get("/", summary="The parents' page", responses=answers(SERVED))
def index():
    return _answer(INDEX)


@router.get(
    "/assets/<file>", summary="The page's scripts, styles and icon", responses=answers(SERVED, 404)
)
def asset(file: str):
    return _answer(path_param(app, "file"))


app = create_api(services, router)
lambda_handler = lambda_handler_for(app)
