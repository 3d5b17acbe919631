from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from core.errors import Conflict


def refused(*args, **kwargs):
    raise Conflict("The campaign is closed.", field="campaign")


@api_view(["POST"])
@permission_classes([AllowAny])
def refused_api(request):
    refused()


urlpatterns = [
    path("page/", refused),
    path("api/", refused_api),
    path("", include("accounts.urls")),
    path("", include("annotation.home_urls")),
]
