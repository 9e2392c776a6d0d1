#!/bin/bash
# Handler of StreamAudioFunction. The Lambda Web Adapter's /opt/bootstrap execs this script,
# then waits for the app to answer AWS_LWA_READINESS_CHECK_PATH on $PORT.
#
# uvicorn is started directly, not through the Python runtime's bootstrap, so nothing puts the
# function's code (/var/task) or the layers (/opt/python) on sys.path: name them here.
# No access log: a device URL carries its credential in the query string. Unbuffered output, as
# the Python runtime has it: a log or metrics line is in CloudWatch before Lambda freezes us.
cd "$(dirname "$0")" || exit 1
export PYTHONPATH="${PWD}:/opt/python:/opt/python/lib/python3.13/site-packages${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHONUNBUFFERED=1
exec python3 -m uvicorn --host 0.0.0.0 --port "${PORT:-8000}" --no-access-log app:app
