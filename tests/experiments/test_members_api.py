"""GET/POST experiments/{id}/members and DELETE experiments/{id}/members/{username}."""

from experiments.models import Membership, Role
from tests.factories import make_experiment


def url(experiment, username: str | None = None) -> str:
    base = f"/api/research/experiments/{experiment.public_id}/members"
    return f"{base}/{username}" if username else base


def test_adding_a_member_is_201_and_lets_them_see_it(client_for, alice, dave):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(url(experiment), {"username": "dave", "role": "viewer"})
    assert response.status_code == 201
    assert response.json()["username"] == "dave"
    assert response.json()["role"] == "viewer"
    assert client_for(dave).get(f"/api/research/experiments/{experiment.public_id}").status_code == 200


def test_changing_a_role_is_200(client_for, alice, bob):
    experiment, _ = make_experiment(alice, members={bob: Role.VIEWER})
    response = client_for(alice).post(url(experiment), {"username": "bob", "role": "operator"})
    assert response.status_code == 200
    assert response.json()["role"] == "operator"
    assert Membership.objects.get(experiment=experiment, user=bob).role == Role.OPERATOR


def test_setting_the_same_role_again_is_200(client_for, alice, bob):
    experiment, _ = make_experiment(alice, members={bob: Role.VIEWER})
    assert client_for(alice).post(url(experiment), {"username": "bob", "role": "viewer"}).status_code == 200


def test_list_members_shows_roles(client_for, alice, members, charlie):
    experiment, _ = make_experiment(alice, members=members)
    response = client_for(charlie).get(url(experiment))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and body["next"] is None
    assert {m["username"]: m["role"] for m in body["results"]} == {
        "alice": "owner",
        "bob": "operator",
        "charlie": "viewer",
    }


def test_unknown_username_is_400(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(url(experiment), {"username": "ghost", "role": "viewer"})
    assert response.status_code == 400
    assert "username" in response.json()["fields"]


def test_owner_role_cannot_be_given(client_for, alice, dave):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(url(experiment), {"username": "dave", "role": "owner"})
    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    assert not Membership.objects.filter(experiment=experiment, user=dave).exists()


def test_owner_role_cannot_change_is_409(client_for, alice, staff):
    experiment, _ = make_experiment(alice)
    response = client_for(staff).post(url(experiment), {"username": "alice", "role": "viewer"})
    assert response.status_code == 409
    assert Membership.objects.get(experiment=experiment, user=alice).role == Role.OWNER


def test_removing_a_member_is_204_and_hides_the_experiment_from_them(client_for, alice, bob):
    experiment, _ = make_experiment(alice, members={bob: Role.OPERATOR})
    response = client_for(alice).delete(url(experiment, "bob"))
    assert response.status_code == 204
    assert not Membership.objects.filter(experiment=experiment, user=bob).exists()
    assert client_for(bob).get(f"/api/research/experiments/{experiment.public_id}").status_code == 404


def test_removing_the_owner_is_409(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).delete(url(experiment, "alice"))
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert Membership.objects.filter(experiment=experiment, user=alice, role=Role.OWNER).exists()


def test_removing_someone_who_is_not_a_member_is_404(client_for, alice, dave):
    experiment, _ = make_experiment(alice)
    assert client_for(alice).delete(url(experiment, "dave")).status_code == 404
