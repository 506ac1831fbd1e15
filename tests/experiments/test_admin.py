"""The admin for operators calls the same services as the API, so it records the same
events; status and ids are read-only; runs and events cannot be edited there."""

import pytest
from django.urls import reverse

from agents.models import AgentRun, RunStatus
from experiments.models import Experiment, ExperimentStatus, Membership, Role
from realtime.models import Event
from tests.experiments.recorded import events_of
from tests.factories import api_client, experiment_in_status, make_experiment, run_in_status

CHANGELIST = "admin:experiments_experiment_changelist"


def change_url(experiment) -> str:
    return reverse("admin:experiments_experiment_change", args=[experiment.pk])


def shape(experiment) -> list[tuple[int, str, str | None, list[str]]]:
    """Events as comparable across two experiments: seq, type, run position, data keys."""
    runs = {r.public_id: i for i, r in enumerate(experiment.runs.order_by("created_at", "id"))}
    return [(e.seq, e.event_type, runs.get(e.run_id), sorted(e.data)) for e in events_of(experiment)]


def run_action(client, url_name: str, action: str, objects):
    return client.post(reverse(url_name), {"action": action, "_selected_action": [o.pk for o in objects]}, follow=True)


def form_data(client, url: str) -> dict:
    """What the change form would post back unchanged, inlines included."""
    response = client.get(url)
    assert response.status_code == 200
    data = {}
    form = response.context["adminform"].form
    for name in form.fields:
        data[name] = form[name].value()
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
        for member_form in formset.forms:
            for name in member_form.fields:
                value = member_form[name].value()
                if value not in (None, False):
                    data[member_form.add_prefix(name)] = value
    return data


# Lists ---------------------------------------------------------------------------------


def test_experiment_list_filters_and_searches(admin_client, alice):
    make_experiment(alice, name="Tokenizer study")
    experiment_in_status(alice, ExperimentStatus.RUNNING, name="Parser race")
    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "running"})
    assert response.status_code == 200
    assert [e.name for e in response.context["cl"].result_list] == ["Parser race"]
    response = admin_client.get(reverse(CHANGELIST), {"q": "tokenizer"})
    assert [e.name for e in response.context["cl"].result_list] == ["Tokenizer study"]


def test_change_page_shows_runs_and_members_inline(admin_client, alice, bob):
    experiment, issued = make_experiment(alice, members={bob: Role.OPERATOR})
    response = admin_client.get(change_url(experiment))
    assert response.status_code == 200
    content = response.content.decode()
    for item in issued:
        assert item.run.public_id in content
    assert "bob" in content
    assert "token" not in response.context["adminform"].form.fields


def test_experiments_are_not_added_in_the_admin(admin_client, db):
    assert admin_client.get(reverse("admin:experiments_experiment_add")).status_code == 403


# Actions emit what the API emits -------------------------------------------------------


def test_start_action_records_the_same_events_as_the_api(admin_client, alice):
    by_admin, _ = make_experiment(alice, config={"seed": 1})
    by_api, _ = make_experiment(alice, config={"seed": 1})
    response = run_action(admin_client, CHANGELIST, "start_experiments", [by_admin])
    assert response.status_code == 200
    assert api_client(alice).post(f"/api/research/experiments/{by_api.public_id}/start").status_code == 200
    by_admin.refresh_from_db()
    assert by_admin.status == "running"
    assert shape(by_admin) == shape(by_api)
    started = events_of(by_admin)[-1].data
    assert (started["name"], started["total_agents"], started["config"]) == ("Experiment", 2, {"seed": 1})
    assert set(by_admin.runs.values_list("status", flat=True)) == {"starting"}


def test_stop_action_records_the_same_events_as_the_api(admin_client, alice):
    by_admin, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    by_api, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    run_action(admin_client, CHANGELIST, "stop_experiments", [by_admin])
    api_client(alice).post(f"/api/research/experiments/{by_api.public_id}/stop")
    by_admin.refresh_from_db()
    assert by_admin.status == "stopped"
    assert shape(by_admin) == shape(by_api)
    assert events_of(by_admin)[-1].data["by"] == "admin"


def test_an_illegal_action_changes_nothing_and_says_why(admin_client, alice):
    created, _ = make_experiment(alice, name="Not started")
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING, name="Running")
    response = run_action(admin_client, CHANGELIST, "stop_experiments", [created, running])
    messages = [str(m) for m in response.context["messages"]]
    assert "1 experiment(s) stopped." in messages
    assert any(m.startswith("Not started: Only a running experiment can stop") for m in messages)
    created.refresh_from_db()
    assert created.status == "created"
    assert [e.event_type for e in events_of(created)] == ["experiment_created"]


# Edits go through lifecycle.update_experiment ------------------------------------------


def test_editing_fields_records_one_experiment_updated_like_a_patch(admin_client, alice):
    experiment, _ = make_experiment(alice, config={"a": 1})
    data = form_data(admin_client, change_url(experiment))
    data.update(name="Renamed", config='{"a": 2}')
    response = admin_client.post(change_url(experiment), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    experiment.refresh_from_db()
    assert (experiment.name, experiment.config) == ("Renamed", {"a": 2})
    events = events_of(experiment)
    assert [(e.seq, e.event_type) for e in events] == [(1, "experiment_created"), (2, "experiment_updated")]
    assert events[1].data == {"name": "Renamed", "config": {"a": 2}}


@pytest.mark.parametrize("config", ['"a string"', '{"k": "nul \\u0000"}', '{"big": "' + "x" * 70_000 + '"}'])
def test_a_config_the_api_would_refuse_is_refused_here_too(admin_client, alice, config):
    experiment, _ = make_experiment(alice, config={"a": 1})
    data = form_data(admin_client, change_url(experiment))
    data["config"] = config
    response = admin_client.post(change_url(experiment), data)
    assert response.status_code == 200
    assert "config" in response.context["adminform"].form.errors
    experiment.refresh_from_db()
    assert experiment.config == {"a": 1}
    assert len(events_of(experiment)) == 1


def test_saving_unchanged_records_nothing(admin_client, alice):
    experiment, _ = make_experiment(alice)
    response = admin_client.post(change_url(experiment), form_data(admin_client, change_url(experiment)))
    assert response.status_code == 302
    assert len(events_of(experiment)) == 1


def test_status_ids_and_a_started_experiments_config_are_read_only(admin_client, alice):
    experiment, _ = experiment_in_status(alice, ExperimentStatus.RUNNING, config={"a": 1})
    data = form_data(admin_client, change_url(experiment))
    assert "config" not in data
    data.update(name="Renamed", config='{"a": 2}', status="completed", public_id="exp_mine")
    assert admin_client.post(change_url(experiment), data).status_code == 302
    updated = Experiment.objects.get(pk=experiment.pk)
    assert (updated.name, updated.config, updated.status, updated.public_id) == (
        "Renamed",
        {"a": 1},
        "running",
        experiment.public_id,
    )
    assert events_of(experiment)[-1].data == {"name": "Renamed"}


def test_members_are_added_and_removed_through_the_membership_service(admin_client, alice, bob, dave):
    experiment, _ = make_experiment(alice, members={bob: Role.VIEWER})
    data = form_data(admin_client, change_url(experiment))
    prefix = "memberships"
    bob_index = next(i for i in range(2) if data.get(f"{prefix}-{i}-user") == bob.pk)
    data[f"{prefix}-{bob_index}-DELETE"] = "on"
    data.update({f"{prefix}-2-user": dave.pk, f"{prefix}-2-role": "operator", f"{prefix}-TOTAL_FORMS": 3})
    response = admin_client.post(change_url(experiment), data)
    assert response.status_code == 302
    roles = dict(Membership.objects.filter(experiment=experiment).values_list("user__username", "role"))
    assert roles == {"alice": "owner", "dave": "operator"}
    assert api_client(dave).get(f"/api/research/experiments/{experiment.public_id}").status_code == 200


def test_the_owner_cannot_be_removed_in_the_admin(admin_client, alice):
    experiment, _ = make_experiment(alice)
    data = form_data(admin_client, change_url(experiment))
    data["memberships-0-DELETE"] = "on"
    response = admin_client.post(change_url(experiment), data)
    assert response.status_code == 200  # the form again, with the error
    assert Membership.objects.filter(experiment=experiment, user=alice, role=Role.OWNER).exists()


def test_delete_records_experiment_deleted_and_refuses_a_running_one(admin_client, alice):
    stopped, _ = experiment_in_status(alice, ExperimentStatus.STOPPED)
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    delete = reverse("admin:experiments_experiment_delete", args=[stopped.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Experiment.objects.filter(pk=stopped.pk).exists()
    assert events_of(stopped.public_id)[-1].event_type == "experiment_deleted"
    delete = reverse("admin:experiments_experiment_delete", args=[running.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Experiment.objects.filter(pk=running.pk).exists()


# Runs ----------------------------------------------------------------------------------

RUN_CHANGELIST = "admin:agents_agentrun_changelist"


def test_stop_run_action_records_the_same_events_as_the_api(admin_client, alice):
    by_admin, admin_run, _ = run_in_status(alice, RunStatus.RUNNING)
    by_api, api_run, _ = run_in_status(alice, RunStatus.RUNNING)
    run_action(admin_client, RUN_CHANGELIST, "stop_runs", [admin_run])
    api_client(alice).post(f"/api/research/agents/{api_run.public_id}/stop")
    assert AgentRun.objects.get(pk=admin_run.pk).status == "stopped"
    assert shape(by_admin) == shape(by_api)
    assert events_of(by_admin)[-1].data["reason"] == "operator"


def test_run_list_filters_and_searches(admin_client, alice):
    _, running, _ = run_in_status(alice, RunStatus.RUNNING)
    response = admin_client.get(reverse(RUN_CHANGELIST), {"status__exact": "running"})
    assert [r.pk for r in response.context["cl"].result_list] == [running.pk]
    response = admin_client.get(reverse(RUN_CHANGELIST), {"q": running.public_id})
    assert [r.pk for r in response.context["cl"].result_list] == [running.pk]


def test_runs_and_their_reports_are_not_editable(admin_client, alice):
    _, run, _ = run_in_status(alice, RunStatus.RUNNING)
    url = reverse("admin:agents_agentrun_change", args=[run.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "token_hash" not in page.content.decode()
    response = admin_client.post(url, {"status": "completed", "progress_percent": 100})
    assert response.status_code == 403
    assert AgentRun.objects.get(pk=run.pk).status == "running"
    assert admin_client.get(reverse("admin:agents_agentrun_add")).status_code == 403
    assert admin_client.post(reverse("admin:agents_agentrun_delete", args=[run.pk])).status_code == 403


# Events --------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["admin:realtime_event_change", "admin:realtime_event_delete"])
def test_events_are_read_only_in_the_admin(admin_client, alice, url_name):
    experiment, _ = make_experiment(alice)
    event = events_of(experiment)[0]
    assert admin_client.get(reverse("admin:realtime_event_changelist")).status_code == 200
    response = admin_client.post(reverse(url_name, args=[event.pk]), {"event_type": "experiment_deleted"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:realtime_event_add")).status_code == 403
    assert Event.objects.get(pk=event.pk).event_type == "experiment_created"


# Staff without model permissions ---------------------------------------------------------


def test_staff_operate_through_the_admin_without_model_permissions(client, staff, alice):
    """Staff may do everything: the admin does not also ask for Django model permissions."""
    assert not staff.is_superuser and not staff.user_permissions.exists()
    client.force_login(staff)
    experiment, _issued = experiment_in_status(alice, ExperimentStatus.RUNNING, name="Operated")
    run = experiment.runs.first()
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse("admin:agents_agentrun_changelist")).status_code == 200
    assert client.get(reverse("admin:realtime_event_changelist")).status_code == 200
    run_action(client, "admin:agents_agentrun_changelist", "stop_runs", [run])
    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED
    run_action(client, CHANGELIST, "stop_experiments", [experiment])
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.STOPPED
