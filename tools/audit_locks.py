"""Audit the lock files with pip-audit against PyPI's vulnerability service (`make audit`).

Run with the Python of the environment pip-audit is installed in:

    .venv-audit/bin/python tools/audit_locks.py requirements/app.txt requirements/audio.txt ...

The locks pin every package (`uv pip compile`, without hashes), so pip-audit reads them as they
are (`--disable-pip --no-deps`): it resolves and installs nothing, and asks the service about
each pinned version (`https://pypi.org/pypi/<name>/<version>/json`). Environment markers are
evaluated for the Python that runs this, so Windows-only pins are left out. `--strict`: a pin the
service does not know fails the audit instead of being skipped.

Exit 0 when no known vulnerability is found, and also when the service cannot be reached (no
network, or an index that does not serve PyPI's JSON API): then one line says the locks were not
audited. Exit 1 when a vulnerability is found, or when the audit fails in any other way.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pip_audit

SERVICE = "https://pypi.org/pypi/{name}/{version}/json"
TIMEOUT_SECONDS = 15
# pip-audit's advice to hash the pins, said on every run: the locks have no hashes by design.
HASH_ADVICE = (
    "WARNING:pip_audit._cli:--no-deps is supported, but users are encouraged",
    "WARNING:pip_audit._cli:Consider using a tool like `pip-compile`",
)
# How pip-audit ends when the connection drops part-way through.
NETWORK_FAILURES = ("requests.exceptions.", "Tip: your network may be blocking this service")


def notice(reason: str) -> int:
    print(
        f"pip-audit: the lock files were not audited: "
        f"PyPI's vulnerability service did not answer ({reason})"
    )
    return 0


def unreachable() -> str | None:
    """Why the service cannot answer, or None when it can.

    It is asked about pip-audit's own release, which PyPI surely knows: any failure means the
    service is out of reach, not that a package is unknown.
    """
    url = SERVICE.format(name="pip-audit", version=pip_audit.__version__)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS):  # noqa: S310 - a fixed https URL
            return None
    except urllib.error.HTTPError as error:
        return f"{url}: HTTP {error.code}"
    except urllib.error.URLError as error:
        return f"{url}: {error.reason}"
    except OSError as error:
        return f"{url}: {error}"


def main(locks: list[str]) -> int:
    if not locks:
        print("usage: audit_locks.py LOCK_FILE...", file=sys.stderr)
        return 2
    reason = unreachable()
    if reason is not None:
        return notice(reason)
    command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "--strict"]
    command += ["--progress-spinner", "off", "--timeout", str(TIMEOUT_SECONDS)]
    for lock in locks:
        command += ["--requirement", lock]
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True, check=False)  # noqa: S603
    lines = [line for line in result.stderr.splitlines() if not line.startswith(HASH_ADVICE)]
    last = next((line for line in reversed(lines) if line.strip()), "")
    if result.returncode != 0 and any(failure in last for failure in NETWORK_FAILURES):
        return notice(last.strip())
    for line in lines:
        print(line, file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
