from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.functional import lazy
from django.views.generic import RedirectView

urlpatterns = [
    # First: the judging API is the busiest path, and URLs are tried in order.
    path("api/", include("annotation.api_urls")),
    path("", include("accounts.urls")),
    path("", include("annotation.home_urls")),  # the site's home page, named "home"
    path("corpora/", include("corpora.urls")),
    path("corpora/", include("generation.urls")),
    path("jobs/", include("jobs.urls")),
    path("annotation/", include("annotation.urls")),
    # Crowd workers arrive here from Prolific, MTurk or a plain link.
    path("join/", include("annotation.join_urls")),
    path("critic/", include("critic.urls")),
    path("distillation/", include("distillation.urls")),
    path("api/", include("corpora.api_urls")),
    path("api/", include("generation.api_urls")),
    path("api/", include("jobs.api_urls")),
    path("api/", include("critic.api_urls")),
    path("api/", include("distillation.api_urls")),
    path("api/", include("core.urls")),
    # The corpus models moved from `generation` to `corpora`; old admin links still work.
    re_path(
        r"^admin/generation/(?P<rest>(?:corpus|relation|event|triple)/.*)$",
        RedirectView.as_view(url="/admin/corpora/%(rest)s", query_string=True, permanent=True),
    ),
    path("admin/", admin.site.urls),
    # For browsers and tools that ask for /favicon.ico without reading the page's <link>;
    # lazy, as a production static URL needs the manifest that collectstatic writes.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico"))),
]

# Benchmarks only (bench/annotate_load.py): the bare endpoint its figures are compared with.
if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("api/bench/", include("core.bench_urls")))
