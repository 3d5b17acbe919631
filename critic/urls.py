from django.urls import path

from . import views

app_name = "critic"

urlpatterns = [
    path("<int:corpus_pk>/", views.DashboardView.as_view(), name="dashboard"),
    path("<int:corpus_pk>/threshold/", views.ThresholdView.as_view(), name="threshold"),
    path("<int:corpus_pk>/target/", views.TargetPrecisionView.as_view(), name="target"),
    path("<int:corpus_pk>/train/", views.TrainView.as_view(), name="train"),
    path("<int:corpus_pk>/embed/", views.EmbedView.as_view(), name="embed"),
    path("<int:corpus_pk>/learn/", views.LearnView.as_view(), name="learn"),
    path("<int:corpus_pk>/settings/", views.ConfigView.as_view(), name="config"),
    path(
        "<int:corpus_pk>/versions/<int:number>/activate/",
        views.ActivateView.as_view(),
        name="activate",
    ),
    path("<int:corpus_pk>/presets/", views.PresetSaveView.as_view(), name="preset_save"),
    path(
        "<int:corpus_pk>/presets/<int:preset_pk>/export/",
        views.PresetExportView.as_view(),
        name="preset_export",
    ),
]
