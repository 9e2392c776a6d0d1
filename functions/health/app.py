"""HealthFunction: GET /api/health, open to all, touches nothing."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_stream.api import create_api, json_response, logger

app = create_api(public=True)


@app.get("/api/health")
def health():
    return json_response(200, {"status": "ok"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
