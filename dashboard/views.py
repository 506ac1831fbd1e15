"""The dashboard's pages. They render a shell with the caller's role; the live state
arrives over the socket (static/dashboard/*.js) and actions go through the REST API."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from experiments.api.permissions import role_allows
from experiments.models import Experiment, Role


@login_required
def experiment_list(request):
    return render(request, "dashboard/experiment_list.html", {})


@login_required
def experiment_detail(request, experiment_id: str):
    experiment = Experiment.objects.visible_to(request.user).filter(public_id=experiment_id).first()
    if experiment is None:
        raise Http404("No such experiment.")
    role = experiment.role_of(request.user)
    return render(
        request,
        "dashboard/experiment_detail.html",
        {
            "experiment": experiment,
            "role": role,
            "can_operate": role_allows(role, Role.OPERATOR),
            "can_edit": role_allows(role, Role.OWNER),
        },
    )
