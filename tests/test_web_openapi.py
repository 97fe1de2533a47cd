"""The HTTP API against its own OpenAPI document (`/api/v1/openapi.json`, generated from the code).

schemathesis (pinned in tests/tools-requirements.txt, in .venv-tools) generates requests from the
document, valid and invalid, logged in with a bearer token, and checks every answer: no server
error, and status, content type and body as the document declares them.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

from conftest import DEMO_PASSWORD, ROOT

SCHEMATHESIS = ROOT / ".venv-tools" / "bin" / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_document_is_openapi_3_and_names_every_area(make_server):
    server = make_server(listeners=[("http", "none")])
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/api/v1/openapi.json", timeout=30) as r:
        assert r.headers["Content-Type"] == "application/json"
        doc = json.loads(r.read())
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert "/api/v1/session" in paths
    assert set(paths["/api/v1/session"]) == {"get", "post", "delete"}
    schemes = doc["components"]["securitySchemes"]
    assert schemes["session_cookie"] == {"type": "apiKey", "in": "cookie", "name": "tidings_session"}
    assert schemes["bearer_token"]["scheme"].lower() == "bearer"
    for path, operations in paths.items():
        assert path.startswith("/api/v1/"), path
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method} {path} declares no response"


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(make_server, tmp_path):
    # Sign-up codes and the login lockout are rate-limited; the limits stay on (429 is declared).
    server = make_server(listeners=[("http", "none"), ("smtp", "none")])
    base = f"http://127.0.0.1:{server.port('http')}"
    token = post_json(f"{base}/api/v1/session", {"user": "ta", "password": DEMO_PASSWORD, "mode": "token"})["token"]
    report = tmp_path / "schemathesis"
    args = [str(SCHEMATHESIS), "run", f"{base}/api/v1/openapi.json",
            "--checks", CHECKS,
            "-H", f"Authorization: Bearer {token}",
            # Logging out would end the token the rest of the run uses.
            "--exclude-operation-id", "logout",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "30",
            "--workers", "1",
            "--seed", "505",
            "--request-timeout", "30",
            "--report", "junit", "--report-dir", str(report)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = result.stdout + result.stderr
    print(output[-1500:])
    assert result.returncode == 0, output[-8000:]
    assert "No issues found" in output or "passed" in output, output[-4000:]
    # The server is still up and the token still works.
    request = urllib.request.Request(f"{base}/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["account"] == "ta@mmsys.upenn.edu"
