from django.urls import path

from . import views

app_name = "distillation"

urlpatterns = [
    path("", views.RunListView.as_view(), name="run_list"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run_detail"),
    path("runs/<int:pk>/start/", views.RunStartView.as_view(), name="run_start"),
    path("runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="run_cancel"),
    path("runs/<int:pk>/model/", views.RunDownloadView.as_view(), name="run_download"),
    path(
        "runs/<int:pk>/evaluations/",
        views.EvaluationCreateView.as_view(),
        name="evaluation_create",
    ),
    path("evaluations/<int:pk>/", views.EvaluationDetailView.as_view(), name="evaluation_detail"),
    path(
        "evaluations/<int:pk>/start/",
        views.EvaluationStartView.as_view(),
        name="evaluation_start",
    ),
    path(
        "evaluations/<int:pk>/send-to-annotation/",
        views.EvaluationSendView.as_view(),
        name="evaluation_send",
    ),
    path("compare/<int:corpus_pk>/", views.ComparisonView.as_view(), name="comparison"),
    path(
        "triples/<int:triple_pk>/lineage/",
        views.TripleLineageView.as_view(),
        name="triple_lineage",
    ),
]
