"""What the event store holds for an experiment, in seq order."""

from realtime.models import Event


def events_of(experiment) -> list[Event]:
    public_id = experiment if isinstance(experiment, str) else experiment.public_id
    return list(Event.objects.filter(experiment_id=public_id).order_by("seq"))


def event_types(experiment) -> list[str]:
    return [event.event_type for event in events_of(experiment)]
