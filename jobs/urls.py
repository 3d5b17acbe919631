from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("", views.JobListView.as_view(), name="job_list"),
    path("<int:pk>/", views.JobDetailView.as_view(), name="job_detail"),
    path("<int:pk>/download/", views.JobDownloadView.as_view(), name="job_download"),
    path("<int:pk>/card/", views.JobCardView.as_view(), name="job_card"),
    path("<int:pk>/rejected/", views.JobRejectedView.as_view(), name="job_rejected"),
    path("<int:pk>/retry/", views.JobRetryView.as_view(), name="job_retry"),
    path("<int:pk>/cancel/", views.JobCancelView.as_view(), name="job_cancel"),
]
