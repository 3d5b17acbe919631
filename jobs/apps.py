from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from config.celery import app

        from .workers import WorkerHeartbeat

        # Every worker of this project beats, so a queued job's page can say whether one runs.
        app.steps["consumer"].add(WorkerHeartbeat)
