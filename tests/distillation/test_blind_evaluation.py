"""Blind student evaluation (issue 17, item 7): "Send to annotation" takes size, k and gold
share, mixes the teacher's tails for the same heads and relations into one shuffled
campaign under a neutral name, records each item's source where annotators never see it,
and the comparison reads the labels per source, saying "too few labels" where an interval
is wider than ±10 points."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Campaign, Item
from annotation.selectors import aggregate_rows
from annotation.services.aggregation import campaign_aggregate
from annotation.services.campaigns import campaign_create_from_triples
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from annotation.sources import BOTH, STUDENT, TEACHER
from core.errors import AppError
from corpora.models import Corpus, Relation, Triple
from corpora.services import TripleRow, corpus_refresh_counts, triples_append
from critic.labels import corpus_labels
from distillation import selectors
from distillation.models import StudentEvaluation, StudentRun
from distillation.services.outputs import evaluation_outputs_write, evaluation_send_to_annotation

pytestmark = pytest.mark.django_db

RUN_NAME = "secret-student-run"
TEACHER_NAME = "atomic-teacher-corpus"
HEADS = [f"PersonX plans outing {i}" for i in range(6)]
RELATIONS = ["xNeed", "xWant"]
SHARED = (HEADS[0], "xNeed", "buy a ticket")  # written by both
STUDENT_OUTPUTS = 2 * len(HEADS) * len(RELATIONS)  # two tails per (head, relation)


@pytest.fixture
def evaluation() -> StudentEvaluation:
    """A teacher corpus (three tails per head and relation; two, one shared, for the first
    pair) and an evaluation of a student trained on it, with two outputs per pair."""
    relation_id = dict(Relation.objects.values_list("name", "pk"))
    teacher = Corpus.objects.create(name=TEACHER_NAME)
    rows = []
    for head in HEADS:
        for relation in RELATIONS:
            if (head, relation) == SHARED[:2]:
                tails = [SHARED[2], "pack a bag"]
            else:
                tails = [f"plan {i} for {head[-1]}{relation}" for i in range(3)]
            rows += [TripleRow(head, relation_id[relation], t, split="test") for t in tails]
    triples_append(corpus_id=teacher.pk, rows=rows, origin=Triple.Origin.TEACHER)
    corpus_refresh_counts(corpus=teacher)
    run = StudentRun.objects.create(
        name=RUN_NAME, corpus=teacher, base_model="/no/model", finished_at=timezone.now()
    )
    evaluation = StudentEvaluation.objects.create(
        run=run, corpus=Corpus.objects.create(name=f"{RUN_NAME} · eval 1"), max_heads=6
    )
    pairs = [(head, relation) for head in HEADS for relation in RELATIONS]
    tails = [
        [SHARED[2], "find a map"]
        if pair == SHARED[:2]
        else [f"idea {i} for {pair[0][-1]}{pair[1]}" for i in range(2)]
        for pair in pairs
    ]
    written = evaluation_outputs_write(evaluation=evaluation, pairs=pairs, tails=tails)
    StudentEvaluation.objects.filter(pk=evaluation.pk).update(
        metrics={"written": written, "overall": {}}
    )
    evaluation.refresh_from_db()
    assert written == STUDENT_OUTPUTS
    return evaluation


def _items(campaign: Campaign):
    return Item.objects.filter(campaign=campaign, is_gold=False).select_related("triple")


def _pair(item: Item) -> tuple[int, int]:
    return (item.head_id, item.relation_id)


def test_size_k_and_gold_share_are_honoured_and_the_teacher_is_mixed_in(evaluation):
    campaign = evaluation_send_to_annotation(
        evaluation=evaluation, size=8, judgments_per_item=2, gold_share=0.2, seed=7
    )
    items = list(_items(campaign))
    student = [i for i in items if i.source in (STUDENT, BOTH)]
    teacher = [i for i in items if i.source == TEACHER]
    assert len(student) == 8 and len(items) == campaign.item_count
    assert {i.triple.corpus_id for i in student} == {evaluation.corpus_id}
    assert campaign.judgments_per_item == 2 and {i.slots_free for i in items} == {2}
    assert campaign.gold_share == 0.2 and campaign.gold_count > 0
    assert campaign.corpus_id == evaluation.corpus_id
    assert campaign.purpose == Campaign.Purpose.AUDIT

    # The teacher's tails for the same heads and relations, as many per pair as the
    # student has there (an item both wrote counts once for each).
    assert teacher and {i.triple.corpus_id for i in teacher} == {evaluation.run.corpus_id}
    student_pairs = {}
    for item in student:
        student_pairs[_pair(item)] = student_pairs.get(_pair(item), 0) + 1
    teacher_pairs = {}
    for item in [*teacher, *(i for i in student if i.source == BOTH)]:
        teacher_pairs[_pair(item)] = teacher_pairs.get(_pair(item), 0) + 1
    assert teacher_pairs == student_pairs

    # Sending again gives the same campaign; without the teacher, the student alone.
    assert evaluation_send_to_annotation(evaluation=evaluation).pk == campaign.pk

    # The researcher's aggregated export says where each item came from.
    exported = {row["item"]: row["source"] for row in aggregate_rows(campaign=campaign)}
    assert exported == {i.pk: i.source for i in items if not i.is_gold}


def test_without_the_teacher_and_without_gold(evaluation):
    campaign = evaluation_send_to_annotation(
        evaluation=evaluation, judgments_per_item=1, gold_share=0.0, with_teacher=False
    )
    items = list(_items(campaign))
    assert len(items) == STUDENT_OUTPUTS and {i.source for i in items} == {STUDENT}
    assert campaign.gold_count == 0 and campaign.judgments_per_item == 1


def test_a_tail_both_wrote_is_asked_once_and_counts_for_both(evaluation):
    campaign = evaluation_send_to_annotation(evaluation=evaluation, gold_share=0.0, seed=3)
    head_id, relation_id = (
        Triple.objects.filter(corpus=evaluation.corpus, tail=SHARED[2])
        .values_list("head_id", "relation_id")
        .get()
    )
    pair = list(_items(campaign).filter(head_id=head_id, relation_id=relation_id))
    # The teacher has two tails there and the student two: both of the teacher's are drawn,
    # the shared one is the student's item marked "both", the other a teacher item.
    assert sorted((i.tail, i.source) for i in pair) == sorted(
        [(SHARED[2], BOTH), ("find a map", STUDENT), ("pack a bag", TEACHER)]
    )
    both = next(i for i in pair if i.source == BOTH)
    assert both.triple.corpus_id == evaluation.corpus_id
    sources = set(_items(campaign).values_list("source", flat=True))
    assert sources == {STUDENT, TEACHER, BOTH}


def test_positions_are_shuffled_so_sources_interleave_the_same_way_for_a_seed(evaluation):
    campaign = evaluation_send_to_annotation(evaluation=evaluation, gold_share=0.0, seed=11)
    order = list(_items(campaign).order_by("position").values_list("source", flat=True))
    runs = 1 + sum(a != b for a, b in zip(order, order[1:], strict=False))
    assert TEACHER in order[: len(order) // 2] and STUDENT in order[len(order) // 2 :]
    assert runs > len(order) // 4
    positions = list(_items(campaign).values_list("position", flat=True))
    assert sorted(positions) == list(range(len(positions)))

    # The same triples and seed give the same order; another seed another.
    triples = list(_items(campaign).order_by("triple_id").values_list("triple_id", "source"))

    def order_of(name: str, seed: int) -> list[int]:
        made = campaign_create_from_triples(
            corpus=evaluation.corpus, name=name, triples=triples, gold_share=0.0, seed=seed
        )
        return list(_items(made).order_by("position").values_list("triple_id", flat=True))

    assert order_of("again", 11) == order_of("once more", 11) != order_of("other", 12)


def test_the_name_and_instructions_are_neutral(evaluation, tmp_path):
    campaign = evaluation_send_to_annotation(evaluation=evaluation, gold_share=0.0)
    today = timezone.localdate().isoformat()
    assert campaign.name == f"Commonsense judgments {today} #1"
    for text in (campaign.name, campaign.instructions):
        for hint in (RUN_NAME, TEACHER_NAME, evaluation.corpus.name, "student", "teacher"):
            assert hint.lower() not in text.lower(), hint
        assert "model" not in text.lower()
    assert campaign.instructions

    # A second blind campaign the same day is #2.
    other = StudentEvaluation.objects.create(
        run=evaluation.run, corpus=Corpus.objects.create(name=f"{RUN_NAME} · eval 2")
    )
    evaluation_outputs_write(evaluation=other, pairs=[(HEADS[1], "xWant")], tails=[["go out"]])
    second = evaluation_send_to_annotation(evaluation=other, gold_share=0.0)
    assert second.name == f"Commonsense judgments {today} #2"


def test_a_name_taken_meanwhile_moves_on_to_the_next_number(evaluation, monkeypatch):
    """Two sends at the same moment may both pick "#1": the later one takes "#2"."""
    from distillation.services import outputs

    today = timezone.localdate().isoformat()
    first = f"Commonsense judgments {today} #1"
    Campaign.objects.create(corpus=evaluation.corpus, name=first)
    names = iter([first])
    real = outputs.blind_campaign_name
    monkeypatch.setattr(outputs, "blind_campaign_name", lambda: next(names, None) or real())
    campaign = evaluation_send_to_annotation(evaluation=evaluation, gold_share=0.0)
    assert campaign.name == f"Commonsense judgments {today} #2"


def test_the_annotator_sees_no_source_and_no_run_or_corpus_name(
    evaluation, annotator, annotator_client
):
    campaign = evaluation_send_to_annotation(evaluation=evaluation, gold_share=0.0)
    member_add(campaign=campaign, annotator=annotator)
    hints = (RUN_NAME, TEACHER_NAME, "student", "teacher")

    page = annotator_client.get(reverse("annotation:judge", args=[campaign.pk]))
    assert page.status_code == 200
    html = page.text.lower()
    assert campaign.name.lower() in html
    for hint in hints:
        assert hint.lower() not in html, hint
    assert "data-source" not in html and "both" not in html

    api = APIClient()
    api.force_authenticate(annotator)
    payload = api.post(f"/api/campaigns/{campaign.pk}/next/").json()
    assert set(payload) == {
        "assignment_id",
        "head",
        "relation",
        "tail",
        "sentence",
        "guideline",
        "expires_at",
    }
    listed = api.get("/api/campaigns/open/").json()
    for body in (payload, listed):
        text = str(body).lower()
        for hint in hints:
            assert hint.lower() not in text, hint
        assert "source" not in text


def test_teacher_items_are_no_labels_of_the_student_corpus(evaluation, annotator):
    campaign = evaluation_send_to_annotation(
        evaluation=evaluation, judgments_per_item=1, gold_share=0.0, seed=5
    )
    _judge(campaign, annotator)
    campaign_aggregate(campaign=campaign)
    labelled = set(corpus_labels(corpus_id=evaluation.corpus_id).triple_ids.tolist())
    own = set(
        _items(campaign).filter(source__in=[STUDENT, BOTH]).values_list("triple_id", flat=True)
    )
    assert labelled == own


# --- Refusals -------------------------------------------------------------------------

RULES = [
    ("size", 0, "Ensure this value is greater than or equal to 1.", "--send-size"),
    (
        "judgments_per_item",
        21,
        "Ensure this value is less than or equal to 20.",
        "--judgments-per-item",
    ),
    ("gold_share", 0.6, "Ensure this value is less than or equal to 0.5.", "--gold-share"),
    ("gold_share", -0.1, "Ensure this value is greater than or equal to 0.0.", "--gold-share"),
]


def _send_form(**overrides) -> dict:
    data = {"size": "", "judgments_per_item": "3", "gold_share": "0.1", "with_teacher": "on"}
    return {**data, **{k: str(v) for k, v in overrides.items()}}


@pytest.mark.parametrize(("field", "value", "message", "flag"), RULES)
def test_refused_values_are_refused_alike_at_every_door(
    evaluation, researcher, researcher_client, field, value, message, flag
):
    with pytest.raises(AppError) as refused:
        evaluation_send_to_annotation(evaluation=evaluation, **{field: value})
    assert (str(refused.value), refused.value.field) == (message, field)

    api = APIClient()
    api.force_authenticate(researcher)
    response = api.post(
        f"/api/evaluations/{evaluation.pk}/send-to-annotation/", {field: value}, format="json"
    )
    assert response.status_code == 400 and response.json()[field] == [message]

    page = researcher_client.post(
        reverse("distillation:evaluation_send", args=[evaluation.pk]),
        _send_form(**{field: value}),
    )
    assert page.status_code == 200
    assert page.context["send_form"].errors[field] == [message]
    assert message in page.text

    with pytest.raises(CommandError) as cli:
        call_command(
            "evaluate_student",
            f"--run={RUN_NAME}",
            "--send-to-annotation",
            f"{flag}={value}",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert str(cli.value) == message
    assert (
        not Campaign.objects.exists()
        and not StudentEvaluation.objects.filter(campaign__isnull=False).exists()
    )


def test_the_page_and_the_api_send_with_the_settings_given(evaluation, researcher_client):
    page = researcher_client.get(reverse("distillation:evaluation_detail", args=[evaluation.pk]))
    form = page.text.split('id="send"', 1)[1].split("</section>", 1)[0]
    assert 'name="with_teacher"' in form and "checked" in form
    assert "Send to annotation" in form and TEACHER_NAME in form

    sent = researcher_client.post(
        reverse("distillation:evaluation_send", args=[evaluation.pk]),
        _send_form(size=6, judgments_per_item=2, gold_share=0),
    )
    campaign = Campaign.objects.get()
    assert sent["Location"] == reverse("annotation:campaign_detail", args=[campaign.pk])
    assert campaign.judgments_per_item == 2 and campaign.gold_count == 0
    assert _items(campaign).filter(source__in=[STUDENT, BOTH]).count() == 6
    assert _items(campaign).filter(source=TEACHER).exists()


def test_the_api_sends_the_student_alone_when_asked(evaluation, researcher):
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.post(
        f"/api/evaluations/{evaluation.pk}/send-to-annotation/",
        {"size": 5, "judgments_per_item": 4, "gold_share": 0, "with_teacher": False},
        format="json",
    )
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert response.json()["items"] == 5 == campaign.item_count
    assert set(_items(campaign).values_list("source", flat=True)) == {STUDENT}
    assert campaign.judgments_per_item == 4


# --- The comparison per source ------------------------------------------------------


def _judge(campaign: Campaign, annotator) -> None:
    """One annotator judges every item: the student's (and shared) items acceptable, every
    other teacher item not; the answers alternate so they never run in a straight line."""
    member_add(campaign=campaign, annotator=annotator)
    turn = 0
    while assignment := assignment_next(campaign=campaign, annotator=annotator):
        item = Item.objects.get(pk=assignment.item_id)
        teacher_turn = item.source == TEACHER
        if teacher_turn:
            turn += 1
        accepted = not teacher_turn or turn % 2 == 0
        value = (2 if turn % 3 else 1) if accepted else (-2 if turn % 3 else -1)
        judgment_submit(assignment_id=assignment.pk, annotator=annotator, value=value)
        turn += 1


def test_the_comparison_counts_labels_per_source_and_says_too_few(
    evaluation, annotator, researcher_client
):
    campaign = evaluation_send_to_annotation(
        evaluation=evaluation, judgments_per_item=1, gold_share=0.0, seed=2
    )
    blind = selectors.blind_comparison(evaluation=evaluation)
    student_items = _items(campaign).filter(source__in=[STUDENT, BOTH]).count()
    teacher_items = _items(campaign).filter(source__in=[TEACHER, BOTH]).count()
    assert blind.overall.student.items == student_items == STUDENT_OUTPUTS
    assert blind.overall.teacher.items == teacher_items and blind.both == 1
    assert blind.overall.student.judged == 0 and blind.overall.student.too_few

    _judge(campaign, annotator)
    # Not aggregated yet: nothing is counted, and the page says the labels are stale.
    assert selectors.blind_comparison(evaluation=evaluation).stale
    campaign_aggregate(campaign=campaign)
    blind = selectors.blind_comparison(evaluation=evaluation)
    assert not blind.stale

    student, teacher = blind.overall.student, blind.overall.teacher
    assert student.judged == student.items == STUDENT_OUTPUTS
    assert student.accepted == STUDENT_OUTPUTS and student.rate == 1.0
    # 24 of 24: Wilson's interval is [0.862, 1], ±6.9 points: enough labels.
    assert student.half_width == pytest.approx((1 - 24 / (24 + 1.959964**2)) / 2, abs=1e-3)
    assert not student.too_few
    assert teacher.judged == teacher_items and 0 < teacher.rate < 1
    assert teacher.too_few and teacher.half_width > 0.10
    by_relation = {row.relation: row for row in blind.relations}
    assert set(by_relation) == set(RELATIONS)
    for row in by_relation.values():
        # 12 of 12 accepted: [0.757, 1] is ±12 points, too wide.
        assert row.student.judged == 12 and row.student.rate == 1.0 and row.student.too_few
    assert sum(r.teacher.judged for r in by_relation.values()) == teacher.judged

    # The page shows, per relation and overall, each cell's counts and the rule.
    page = researcher_client.get(
        reverse("distillation:comparison", args=[evaluation.run.corpus_id])
    )
    html = page.text
    section = html.split(f'id="blind-{evaluation.pk}"', 1)[1].split("</section>", 1)[0]
    assert campaign.name in section
    rows = re.findall(
        r'<tr class="blind-row[^"]*" data-relation="([^"]*)">(.*?)</tr>', section, re.S
    )
    assert [name for name, _ in rows] == [*RELATIONS, ""]
    overall = rows[-1][1]
    student_cell = overall.split('data-source="student"', 1)[1].split('data-source="teacher"')[0]
    assert "100.0%" in student_cell and "too few labels" not in student_cell
    assert f"{STUDENT_OUTPUTS} of {STUDENT_OUTPUTS}" in student_cell
    teacher_cell = overall.split('data-source="teacher"', 1)[1]
    assert "too few labels" in teacher_cell
    assert f"{teacher_items} of {teacher_items}" in teacher_cell
    for _, cells in rows[:-1]:
        assert cells.count("too few labels") == 2
        assert "12 of 12" in cells

    # The API gives the same cells.
    api = APIClient()
    api.force_authenticate(page.wsgi_request.user)
    rows = api.get(f"/api/corpora/{evaluation.run.corpus_id}/comparison/").json()
    student_row = next(r for r in rows if r["kind"] == "student")
    assert student_row["blind"]["overall"]["student"]["judged"] == STUDENT_OUTPUTS
    assert student_row["blind"]["overall"]["student"]["too_few"] is False
    assert student_row["blind"]["overall"]["teacher"]["too_few"] is True
    assert student_row["blind"]["both"] == 1

    # The evaluation's page shows the same table.
    detail = researcher_client.get(reverse("distillation:evaluation_detail", args=[evaluation.pk]))
    assert 'id="blind"' in detail.text and "too few labels" in detail.text


def test_a_researchers_final_label_wins_and_cant_judge_is_no_label(evaluation, annotator):
    campaign = evaluation_send_to_annotation(
        evaluation=evaluation, judgments_per_item=1, gold_share=0.0, with_teacher=False
    )
    _judge(campaign, annotator)
    campaign_aggregate(campaign=campaign)
    first, second = _items(campaign).order_by("position")[:2]
    Item.objects.filter(pk=first.pk).update(adjudicated_value=-2, adjudicated_at=timezone.now())
    Item.objects.filter(pk=second.pk).update(adjudicated_value=-9, adjudicated_at=timezone.now())
    student = selectors.blind_comparison(evaluation=evaluation).overall.student
    assert (student.items, student.judged, student.accepted) == (
        STUDENT_OUTPUTS,
        STUDENT_OUTPUTS - 1,
        STUDENT_OUTPUTS - 2,
    )
