from django.urls import path

from . import apis

urlpatterns = [
    path("teachers/", apis.TeacherListApi.as_view(), name="api-teacher-list"),
    path("teachers/<int:pk>/check/", apis.TeacherCheckApi.as_view(), name="api-teacher-check"),
    path("pools/", apis.PoolListApi.as_view(), name="api-pool-list"),
    path("pools/<int:pk>/examples/", apis.PoolExamplesApi.as_view(), name="api-pool-examples"),
    path("runs/", apis.RunListApi.as_view(), name="api-run-list"),
    path("runs/<int:pk>/", apis.RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<int:pk>/start/", apis.RunStartApi.as_view(), name="api-run-start"),
]
