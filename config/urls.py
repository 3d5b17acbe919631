from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("accounts.urls")),
    path("corpora/", include("generation.urls")),
    path("jobs/", include("jobs.urls")),
    path("annotation/", include("annotation.urls")),
    path("critic/", include("critic.urls")),
    path("distillation/", include("distillation.urls")),
    path("api/", include("generation.api_urls")),
    path("api/", include("jobs.api_urls")),
    path("api/", include("annotation.api_urls")),
    path("api/", include("critic.api_urls")),
    path("api/", include("distillation.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
