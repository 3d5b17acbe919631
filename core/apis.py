"""The base of every researcher API view."""

from rest_framework.views import APIView

from .roles import IsResearcher


class ResearcherAPIView(APIView):
    permission_classes = [IsResearcher]
