from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime events"

    def ready(self):
        # Connect the receivers that turn domain signals into stored, streamed events.
        from experiments import providers
        from realtime import receivers  # noqa: F401
        from realtime.background import count_connections
        from realtime.replay import experiment_event_count, experiment_events
        from realtime.store import current_seq

        # What experiments needs from realtime without importing it (STYLE.md).
        providers.connection_counter = count_connections
        providers.experiment_events = experiment_events
        providers.experiment_event_count = experiment_event_count
        providers.experiment_seq = current_seq
