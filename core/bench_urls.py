"""Routed only when settings.BENCH_ENDPOINTS is on (config.urls)."""

from django.urls import path

from .bench import BareApi

urlpatterns = [path("bare/", BareApi.as_view(), name="api-bench-bare")]
