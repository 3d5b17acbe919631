from django.urls import path

from . import views

app_name = "generation"

# Mounted under /corpora/ beside corpora.urls, where these pages have always been.
urlpatterns = [
    path("teachers/", views.TeacherListView.as_view(), name="teacher_list"),
    path("teachers/<int:pk>/check/", views.TeacherCheckView.as_view(), name="teacher_check"),
    path("pools/", views.PoolListView.as_view(), name="pool_list"),
    path("pools/<int:pk>/", views.PoolDetailView.as_view(), name="pool_detail"),
    path(
        "pools/<int:pk>/examples/<int:example_pk>/delete/",
        views.PoolExampleDeleteView.as_view(),
        name="pool_example_delete",
    ),
    path("runs/", views.RunListView.as_view(), name="run_list"),
    path("runs/new/", views.RunCreateView.as_view(), name="run_create"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run_detail"),
    path("runs/<int:pk>/start/", views.RunStartView.as_view(), name="run_start"),
]
