from django.apps import AppConfig


class CriticConfig(AppConfig):
    name = "critic"
