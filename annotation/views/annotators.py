"""The researchers' annotators page (/annotation/annotators/): each annotator's record
across campaigns, invite (an existing annotator, or one made with a username) to a
campaign, deactivate and reinstate; and a campaign's pay sheet (pay.csv)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views import View

from core.errors import AppError
from core.roles import ResearcherRequiredMixin

from ..models import Campaign
from ..pay import SHAPES, pay_csv_chunks
from ..records import annotator_records, annotator_users
from ..services.membership import annotator_activate, annotator_deactivate, member_invite

PER_PAGE = 100


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.filter(status=Campaign.Status.OPEN).only("pk", "name"),
        empty_label=None,
    )
    create = forms.BooleanField(
        required=False, label="Make the account if there is none (no password yet)"
    )


class AnnotatorListView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        paginator = Paginator(annotator_users(), PER_PAGE)
        page = paginator.get_page(request.GET.get("page"))
        records = annotator_records(users=list(page.object_list))
        context = {"records": records, "page": page, "invite_form": InviteForm()}
        return render(request, "annotation/annotators.html", context)


class AnnotatorInviteView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        form = InviteForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                messages.error(request, f"{field}: {errors[0]}")
            return redirect("annotation:annotator_list")
        data = form.cleaned_data
        try:
            standing, made = member_invite(
                campaign=data["campaign"], username=data["username"], create=data["create"]
            )
        except AppError as exc:
            messages.error(request, str(exc))
        else:
            made_text = " (account made: set a password in the admin)" if made else ""
            messages.success(
                request,
                f"{data['username']} is an annotator of {data['campaign'].name}{made_text}.",
            )
        return redirect("annotation:annotator_list")


class AnnotatorActiveView(ResearcherRequiredMixin, View):
    """Deactivate (no login, no judging) or reinstate an annotator account."""

    def post(self, request: HttpRequest, user_pk: int) -> HttpResponse:
        user = get_object_or_404(get_user_model(), pk=user_pk)
        action = request.POST.get("action")
        try:
            if action == "deactivate":
                annotator_deactivate(annotator=user)
                messages.success(request, f"{user.get_username()} is deactivated.")
            elif action == "reinstate":
                annotator_activate(annotator=user)
                messages.success(request, f"{user.get_username()} is active again.")
            else:
                messages.error(request, "Choose deactivate or reinstate.")
        except AppError as exc:
            messages.error(request, str(exc))
        return redirect("annotation:annotator_list")


class CampaignPayView(ResearcherRequiredMixin, View):
    """The campaign's pay sheet as CSV: ?shape=full|prolific|mturk (&bonus_per_judgment=)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        shape = request.GET.get("shape", "full")
        if shape not in SHAPES:
            return HttpResponseBadRequest("shape is " + ", ".join(SHAPES) + ".")
        bonus = None
        if request.GET.get("bonus_per_judgment"):
            try:
                bonus = Decimal(request.GET["bonus_per_judgment"])
            except InvalidOperation:
                bonus = None
            if bonus is None or not bonus.is_finite() or not 0 <= bonus <= 100:
                return HttpResponseBadRequest("bonus_per_judgment is an amount from 0 to 100.")
        chunks = pay_csv_chunks(campaign=campaign, shape=shape, bonus_per_judgment=bonus)
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        filename = f"{slugify(campaign.name) or 'campaign'}-pay-{shape}.csv"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
