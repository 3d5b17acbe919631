from django.urls import path

from . import teaching_views, views

app_name = "generation"

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
    path("teachers/", teaching_views.TeacherListView.as_view(), name="teacher_list"),
    path(
        "teachers/<int:pk>/check/",
        teaching_views.TeacherCheckView.as_view(),
        name="teacher_check",
    ),
    path("pools/", teaching_views.PoolListView.as_view(), name="pool_list"),
    path("pools/<int:pk>/", teaching_views.PoolDetailView.as_view(), name="pool_detail"),
    path(
        "pools/<int:pk>/examples/<int:example_pk>/delete/",
        teaching_views.PoolExampleDeleteView.as_view(),
        name="pool_example_delete",
    ),
    path("runs/", teaching_views.RunListView.as_view(), name="run_list"),
    path("runs/new/", teaching_views.RunCreateView.as_view(), name="run_create"),
    path("runs/<int:pk>/", teaching_views.RunDetailView.as_view(), name="run_detail"),
    path("runs/<int:pk>/start/", teaching_views.RunStartView.as_view(), name="run_start"),
]
