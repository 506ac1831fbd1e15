"""The dashboard's pages. They render a shell with the caller's role; the live state
arrives over the socket (static/dashboard/*.js) and actions go through the REST API.

The CSRF cookie is set on every page because the scripts send it back as
``X-CSRFToken`` on their ``fetch()`` calls.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from experiments.api.permissions import role_allows
from experiments.models import Experiment, ExperimentStatus, Role


@login_required
@ensure_csrf_cookie
def experiment_list(request):
    return render(
        request,
        "dashboard/experiment_list.html",
        {
            "nav": "experiments",
            "statuses": ExperimentStatus.choices,
            "page_config": {"username": request.user.username, "isStaff": request.user.is_staff},
        },
    )


@login_required
@ensure_csrf_cookie
def experiment_detail(request, experiment_id: str):
    experiment = (
        Experiment.objects.visible_to(request.user).select_related("created_by").filter(public_id=experiment_id).first()
    )
    if experiment is None:
        raise Http404("No such experiment.")
    role = experiment.role_of(request.user)
    can_operate = role_allows(role, Role.OPERATOR)
    can_edit = role_allows(role, Role.OWNER)
    return render(
        request,
        "dashboard/experiment_detail.html",
        {
            "nav": "experiments",
            "experiment": experiment,
            "role": role,
            "can_operate": can_operate,
            "can_edit": can_edit,
            "page_config": {
                "experimentId": experiment.public_id,
                "role": role,
                "canOperate": can_operate,
                "canEdit": can_edit,
            },
        },
    )
