from django.urls import path

from . import apis

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
]
