"""The dashboard's pages as Django renders them (no browser): who gets which page, and
what the page tells its scripts."""

import json

import pytest
from django.test import Client

from experiments.models import Role
from tests.factories import make_experiment


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('id="dashboard-config"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_ask_for_a_login_first(client, db):
    for path in ("/", "/experiments/exp_anything/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_renders_its_form(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_the_list_sets_the_csrf_cookie_for_its_scripts(alice):
    response = signed_in(alice).get("/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    assert page_config(response)["username"] == "alice"
    assert b"dashboard/experiments.js" in response.content


def test_an_owner_gets_the_controls(alice):
    experiment, _issued = make_experiment(alice)
    response = signed_in(alice).get(f"/experiments/{experiment.public_id}/")
    assert response.status_code == 200
    assert page_config(response) == {
        "experimentId": experiment.public_id,
        "role": "owner",
        "canOperate": True,
        "canEdit": True,
    }
    assert b'id="stop-experiment"' in response.content
    assert b'data-export="csv"' in response.content


def test_a_viewer_gets_the_page_without_controls(alice, bob):
    experiment, _issued = make_experiment(alice, members={bob: Role.VIEWER})
    response = signed_in(bob).get(f"/experiments/{experiment.public_id}/")
    assert response.status_code == 200
    assert page_config(response)["canOperate"] is False
    assert b'id="stop-experiment"' not in response.content
    assert b"data-export" not in response.content
    assert b'id="viewer-note"' in response.content


def test_an_operator_gets_the_controls_but_not_the_owners_rights(alice, charlie):
    experiment, _issued = make_experiment(alice, members={charlie: Role.OPERATOR})
    config = page_config(signed_in(charlie).get(f"/experiments/{experiment.public_id}/"))
    assert (config["canOperate"], config["canEdit"]) == (True, False)


@pytest.mark.parametrize("experiment_id", ["exp_doesnotexist", None])
def test_a_non_member_gets_404_as_for_a_missing_experiment(alice, dave, experiment_id):
    experiment, _issued = make_experiment(alice)
    response = signed_in(dave).get(f"/experiments/{experiment_id or experiment.public_id}/")
    assert response.status_code == 404
    assert b"dashboard-config" not in response.content


def test_the_page_escapes_what_users_typed(alice):
    experiment, _issued = make_experiment(alice, name="</script><script>alert(1)</script>")
    response = signed_in(alice).get(f"/experiments/{experiment.public_id}/")
    assert b"<script>alert(1)</script>" not in response.content
