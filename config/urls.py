from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.roles import IsResearcher, ResearcherRequiredMixin


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: for researchers, like the API it describes."""

    permission_classes = [IsResearcher]


class DocsView(ResearcherRequiredMixin, SpectacularSwaggerView):
    """The API docs page: anonymous users go to login, annotators get 403."""

    permission_classes = [IsResearcher]


urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("annotation.home_urls")),  # the site's home page, named "home"
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
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    # For browsers and tools that ask for /favicon.ico without reading the page's <link>;
    # lazy, as a production static URL needs the manifest that collectstatic writes.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico"))),
]
