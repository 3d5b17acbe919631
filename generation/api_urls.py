from django.urls import path

from . import apis, teaching_apis

urlpatterns = [
    path("corpora/", apis.CorpusListApi.as_view(), name="api-corpus-list"),
    path("corpora/<int:pk>/", apis.CorpusDetailApi.as_view(), name="api-corpus-detail"),
    path("corpora/<int:pk>/triples/", apis.TripleListApi.as_view(), name="api-triple-list"),
    path("corpora/<int:pk>/exports/", apis.ExportApi.as_view(), name="api-corpus-export"),
    path("imports/", apis.ImportApi.as_view(), name="api-import"),
    path(
        "imports/<int:pk>/valid-lines/",
        apis.ImportValidLinesApi.as_view(),
        name="api-import-valid-lines",
    ),
    path("relations/", apis.RelationListApi.as_view(), name="api-relation-list"),
    path("teachers/", teaching_apis.TeacherListApi.as_view(), name="api-teacher-list"),
    path(
        "teachers/<int:pk>/check/",
        teaching_apis.TeacherCheckApi.as_view(),
        name="api-teacher-check",
    ),
    path("pools/", teaching_apis.PoolListApi.as_view(), name="api-pool-list"),
    path(
        "pools/<int:pk>/examples/",
        teaching_apis.PoolExamplesApi.as_view(),
        name="api-pool-examples",
    ),
    path("runs/", teaching_apis.RunListApi.as_view(), name="api-run-list"),
    path("runs/<int:pk>/", teaching_apis.RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<int:pk>/start/", teaching_apis.RunStartApi.as_view(), name="api-run-start"),
]
