from django.apps import AppConfig


class CriticConfig(AppConfig):
    name = "critic"

    def ready(self) -> None:
        from corpora.presets import preset_finder_register

        from .export_presets import preset_cut_find

        preset_finder_register(preset_cut_find)
