"""PageFunction: the parents' page. GET / (index.html) and GET /assets/{file} (its scripts,
styles and icon), open to all: the page asks for the management token itself and sends it
only in API calls' Authorization header."""

from pathlib import Path

from smart_stream.bootstrap import services
from smart_stream.http.page import INDEX, PageFiles, page_policy
from smart_stream.http.requests import path_param, request_base
from smart_stream.http.resolver import create_api, lambda_handler_for

app = create_api(services, public=True)
files = PageFiles(Path(__file__).resolve().parent / "static")


def _answer(name: str):
    root = services()
    policy = page_policy(root.urls, root.storage, request_base(app))
    return files.response(
        name, policy=policy, if_none_match=app.current_event.headers.get("if-none-match")
    )


@app.get("/")
def index():
    return _answer(INDEX)


@app.get("/assets/<file>")
def asset(file: str):
    return _answer(path_param(app, "file"))


lambda_handler = lambda_handler_for(app)
