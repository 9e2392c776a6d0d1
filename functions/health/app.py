"""HealthFunction: GET /api/health, open to all, touches nothing."""

from smart_stream.bootstrap import services
from smart_stream.http.resolver import create_api, json_response, lambda_handler_for

app = create_api(services, public=True)


@app.get("/api/health")
def health():
    return json_response(200, {"status": "ok"})


lambda_handler = lambda_handler_for(app)
