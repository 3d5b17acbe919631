from django.urls import path

from . import views

app_name = "corpora"

urlpatterns = [
    path("", views.CorpusListView.as_view(), name="corpus_list"),
    path("import/", views.CorpusImportView.as_view(), name="corpus_import"),
    path(
        "import/<int:pk>/valid-lines/",
        views.CorpusImportValidLinesView.as_view(),
        name="corpus_import_valid_lines",
    ),
    path("relations/", views.RelationListView.as_view(), name="relation_list"),
    path("<int:pk>/", views.CorpusDetailView.as_view(), name="corpus_detail"),
    path("<int:pk>/export/", views.CorpusExportView.as_view(), name="corpus_export"),
]
