from django.urls import path

from . import apis

urlpatterns = [
    path("jobs/<int:pk>/", apis.JobDetailApi.as_view(), name="api-job-detail"),
    path("jobs/<int:pk>/retry/", apis.JobRetryApi.as_view(), name="api-job-retry"),
    path("jobs/<int:pk>/download/", apis.JobDownloadApi.as_view(), name="api-job-download"),
]
