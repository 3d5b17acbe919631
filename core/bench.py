"""Endpoints that only benchmarks turn on (settings.BENCH_ENDPOINTS, env SKD_BENCH_ENDPOINTS).

`BareApi` is the floor `bench/annotate_load.py` compares the judging path with: the same
stack as the annotator API (every middleware, DRF with token authentication, a JSON
answer) around one indexed query. Never routed unless the setting is on.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class BareApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        username = (
            get_user_model()
            .objects.filter(pk=request.user.pk)
            .values_list("username", flat=True)
            .first()
        )
        return Response({"id": request.user.pk, "username": username})
