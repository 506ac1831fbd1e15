"""Request bodies through a real daphne: Django reads them, so a malformed body is the
API's own 400 in the envelope, never Twisted's bare one (``experiments/api/daphne_bodies.py``)."""

import httpx
import pytest

from tests.live import live_database_template, shared_daphne_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.daphne


@pytest.fixture(scope="module")
def api(shared_daphne_server):  # noqa: F811
    with shared_daphne_server.api("operator") as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        b"--abc--\r\n",  # a multipart body without a single part
        b"not multipart at all",
        b"--abc\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--abc--\r\n",
    ],
)
def test_a_malformed_multipart_import_is_400_in_the_envelope(api, body):
    response = api.post(
        "experiments/import", content=body, headers={"Content-Type": "multipart/form-data; boundary=abc"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] in ("validation_error", "bad_request")
    assert api.get("experiments", params={"search": "from a file"}).json()["count"] == 0


def test_a_spec_file_still_imports(api):
    spec = b'{"name": "from a file", "agents": [{"agent_type": "codex"}]}'
    response = api.post("experiments/import", files={"file": ("spec.json", spec, "application/json")})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "from a file"
    assert [run["agent_type"] for run in response.json()["runs"]] == ["codex"]


def test_a_url_encoded_body_is_415_in_the_envelope(api):
    response = api.post("experiments", content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_a_malformed_form_post_to_a_page_gets_djangos_answer_in_the_envelope(shared_daphne_server):  # noqa: F811
    response = httpx.post(
        f"{shared_daphne_server.url}/health",
        content=b"--abc--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=abc"},
    )
    # Without a session there is no CSRF token: Django's 403, in the envelope.
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
