from django.urls import path

from . import apis

urlpatterns = [
    path("critic/<int:corpus_pk>/", apis.CriticDetailApi.as_view(), name="api-critic"),
    path("critic/<int:corpus_pk>/train/", apis.CriticTrainApi.as_view(), name="api-critic-train"),
    path("critic/<int:corpus_pk>/learn/", apis.LearnApi.as_view(), name="api-critic-learn"),
    path(
        "critic/<int:corpus_pk>/threshold/",
        apis.ThresholdApi.as_view(),
        name="api-critic-threshold",
    ),
    path(
        "critic/<int:corpus_pk>/target-precision/",
        apis.TargetPrecisionApi.as_view(),
        name="api-critic-target",
    ),
    path("critic/<int:corpus_pk>/presets/", apis.PresetListApi.as_view(), name="api-presets"),
    path(
        "critic/presets/<int:preset_pk>/export/",
        apis.PresetExportApi.as_view(),
        name="api-preset-export",
    ),
]
