"""The API's schema and docs pages (for researchers, like the API they describe)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .roles import IsResearcher, ResearcherRequiredMixin


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: for researchers, like the API it describes."""

    permission_classes = [IsResearcher]


class DocsView(ResearcherRequiredMixin, SpectacularSwaggerView):
    """The API docs page: anonymous users go to login, annotators get 403."""

    permission_classes = [IsResearcher]


urlpatterns = [
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
]
