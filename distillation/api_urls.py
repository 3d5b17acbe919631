from django.urls import path

from . import apis

urlpatterns = [
    path("students/", apis.RunListApi.as_view(), name="api-student-list"),
    path("students/<int:pk>/", apis.RunDetailApi.as_view(), name="api-student-detail"),
    path("students/<int:pk>/start/", apis.RunStartApi.as_view(), name="api-student-start"),
    path("students/<int:pk>/cancel/", apis.RunCancelApi.as_view(), name="api-student-cancel"),
    path("students/<int:pk>/lineage/", apis.RunLineageApi.as_view(), name="api-student-lineage"),
    path("students/<int:pk>/model/", apis.RunModelApi.as_view(), name="api-student-model"),
    path(
        "students/<int:pk>/evaluations/",
        apis.RunEvaluationsApi.as_view(),
        name="api-student-evaluations",
    ),
    path("evaluations/<int:pk>/", apis.EvaluationDetailApi.as_view(), name="api-evaluation-detail"),
    path(
        "evaluations/<int:pk>/send-to-annotation/",
        apis.EvaluationSendApi.as_view(),
        name="api-evaluation-send",
    ),
    path(
        "corpora/<int:pk>/comparison/", apis.ComparisonApi.as_view(), name="api-corpus-comparison"
    ),
]
