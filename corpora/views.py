"""Corpus pages: list, import, detail (with an htmx triple table), export, relations."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from core.http import wants_fragment
from core.roles import ResearcherRequiredMixin
from jobs.models import Job

from . import selectors, services
from .exporting import ExportFilter
from .forms import CorpusExportForm, CorpusImportForm, RelationForm, TripleFilterForm
from .models import Corpus
from .uploads import upload_guard, upload_limit, upload_refused, upload_too_large_message

TRIPLES_PER_PAGE = 50
# A head search is counted up to this many matches ("more than 10,000" beyond).
COUNT_BOUND = 10_000
SAMPLE_SIZE = 6


def _triple_id_or_none(value: str | None) -> int | None:
    """A triple id from the query string; anything else (or out of BIGINT range) is None."""
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**63 else None


class CorpusListView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "corpora/corpus_list.html", {"corpora": selectors.corpus_list()})


@method_decorator(csrf_exempt, name="dispatch")
class CorpusImportView(ResearcherRequiredMixin, View):
    """The upload page. An upload's size is checked before its body is read
    (uploads.upload_guard), which the CSRF middleware would read first: the POST
    checks CSRF itself."""

    template_name = "corpora/corpus_import.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {"corpus_name": request.GET.get("corpus", "")}
        return self._render(request, CorpusImportForm(initial=initial))

    def post(self, request: HttpRequest) -> HttpResponse:
        if not upload_guard(request):
            return self._too_large(request)  # the body is left unread
        return csrf_protect(self._upload)(request)

    def _upload(self, request: HttpRequest) -> HttpResponse:
        form = CorpusImportForm(request.POST, request.FILES)
        if upload_refused(request):
            return self._too_large(request, corpus_name=request.POST.get("corpus_name", ""))
        if not form.is_valid():
            return self._render(request, form)
        data = form.cleaned_data
        job = services.corpus_import_job_create(
            path=services.upload_save(uploaded=data["file"]),
            corpus_name=data["corpus_name"],
            fmt=data["format"],
            skip_invalid=data["skip_invalid"],
            drop_none=data["none_tails"],
            created_by=request.user,
        )
        # No banner: the job page says how the import goes, and a "received" banner
        # would stay on it, green, after a failure.
        return redirect("jobs:job_detail", pk=job.pk)

    def _too_large(self, request: HttpRequest, corpus_name: str = "") -> HttpResponse:
        return self._render(
            request,
            CorpusImportForm(initial={"corpus_name": corpus_name}),
            upload_error=upload_too_large_message(),
            status=413,
        )

    def _render(
        self,
        request: HttpRequest,
        form: CorpusImportForm,
        upload_error: str = "",
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "form": form,
            "corpus_names": selectors.corpus_list().values_list("name", flat=True),
            "upload_error": upload_error,
            "max_upload_bytes": upload_limit(),
        }
        return render(request, self.template_name, context, status=status)


class CorpusImportValidLinesView(ResearcherRequiredMixin, View):
    """A failed import job's "Import the valid lines": a new job on the same upload that
    skips the invalid lines."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        failed = get_object_or_404(Job, pk=pk, kind=services.IMPORT_JOB)
        try:
            job = services.corpus_import_valid_lines(job=failed, created_by=request.user)
        except services.ImportRetryRefused as exc:
            messages.error(request, str(exc))
            return redirect("jobs:job_detail", pk=failed.pk)
        return redirect("jobs:job_detail", pk=job.pk)


def _filter_choices(corpus: Corpus) -> tuple[list[str], list[str]]:
    """Relation and split names present in the corpus, from its stored stats."""
    relations = [row.relation for row in selectors.corpus_relation_counts(corpus=corpus)]
    return relations, selectors.corpus_splits(corpus=corpus)


def _triple_table_context(request: HttpRequest, corpus: Corpus) -> dict:
    relations, splits = _filter_choices(corpus)
    # Ids of their own: the export form on the same page has a `split` field too.
    filter_form = TripleFilterForm(
        request.GET, relations=relations, splits=splits, auto_id="triples-%s"
    )
    filters = filter_form.valid_values()
    flt = selectors.TripleFilter(
        relation=filters.get("relation"),
        split=filters.get("split"),
        head_contains=filters.get("q"),
    )
    page = selectors.triple_page(
        corpus=corpus,
        flt=flt,
        after=_triple_id_or_none(request.GET.get("after")),
        before=_triple_id_or_none(request.GET.get("before")),
        size=TRIPLES_PER_PAGE,
    )
    return {
        "corpus": corpus,
        "filter_form": filter_form,
        "filters_query": urlencode(filters),
        "is_filtered": bool(filters),
        "page": page,
        "matches": selectors.triple_match_count(corpus=corpus, flt=flt, bound=COUNT_BOUND),
    }


def _corpus_detail_page(
    request: HttpRequest, corpus: Corpus, export_form: CorpusExportForm | None = None
) -> HttpResponse:
    relation_counts = selectors.corpus_relation_counts(corpus=corpus)
    splits = selectors.corpus_splits(corpus=corpus)
    largest = max((row.total for row in relation_counts), default=0) or 1
    relation_rows = [
        {
            "name": row.relation,
            "total": row.total,
            "per_split": [row.by_split.get(split, 0) for split in splits],
            "share": round(100 * row.total / largest),
        }
        for row in relation_counts
    ]
    samples = [
        (triple, triple.relation.sentence(triple.head.text, triple.tail))
        for triple in selectors.triple_sample(corpus=corpus, size=SAMPLE_SIZE)
    ]
    context = {
        **_triple_table_context(request, corpus),
        "relation_rows": relation_rows,
        "splits": splits,
        "samples": samples,
        "export_form": export_form
        or CorpusExportForm(relations=[row.relation for row in relation_counts], splits=splits),
    }
    return render(request, "corpora/corpus_detail.html", context)


class CorpusDetailView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=pk)
        if wants_fragment(request):
            response = render(
                request,
                "corpora/corpus_detail.html#triple-table",
                _triple_table_context(request, corpus),
            )
        else:
            response = _corpus_detail_page(request, corpus)
        # The same URL gives a fragment or a page: caches must keep them apart.
        patch_vary_headers(response, ["HX-Request"])
        return response


class CorpusExportView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=pk)
        relations, splits = _filter_choices(corpus)
        form = CorpusExportForm(request.POST, relations=relations, splits=splits)
        if not form.is_valid():
            return _corpus_detail_page(request, corpus, export_form=form)
        data = form.cleaned_data
        job = services.corpus_export_job_create(
            corpus=corpus,
            fmt=data["format"],
            out_path=services.export_path_for(corpus=corpus, fmt=data["format"]),
            flt=ExportFilter(
                relations=tuple(data["relations"]),
                split=data["split"] or None,
                min_score=data["min_score"],
            ),
            created_by=request.user,
        )
        messages.success(request, f"Exporting {corpus.name} as {data['format']}.")
        return redirect("jobs:job_detail", pk=job.pk)


def _add_service_errors(form: RelationForm, error: ValidationError) -> None:
    """Put a model ValidationError on the form's fields (non-field errors otherwise)."""
    for field, field_errors in error.update_error_dict({}).items():
        form.add_error(field if field in form.fields else None, field_errors)


class RelationListView(ResearcherRequiredMixin, View):
    template_name = "corpora/relation_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, RelationForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RelationForm(request.POST)
        if form.is_valid():
            try:
                relation = services.relation_create(**form.cleaned_data)
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                messages.success(request, f"Relation {relation.name} added.")
                return redirect("corpora:relation_list")
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: RelationForm) -> HttpResponse:
        context = {"relations": selectors.relation_list(), "form": form}
        return render(request, self.template_name, context)
