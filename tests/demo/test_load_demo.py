import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core.roles import is_annotator, is_researcher
from corpora.models import Corpus, Relation

pytestmark = pytest.mark.django_db


def test_load_demo_is_idempotent_and_creates_both_roles(capsys):
    call_command("load_demo")
    call_command("load_demo")
    out = capsys.readouterr().out
    assert "demo corpus already loaded" in out
    assert "user: researcher" in out and "user: annotator" in out
    demo = Corpus.objects.get(name="demo")
    assert 300 <= demo.triple_count <= 400
    skd = set(Relation.objects.filter(is_skd=True).values_list("name", flat=True))
    assert set(demo.stats["by_relation"]) == skd
    users = get_user_model().objects
    assert is_researcher(users.get(username="researcher"))
    assert is_annotator(users.get(username="annotator"))
    assert not is_researcher(users.get(username="annotator"))
    # Only members judge a campaign: both demo annotators belong to the demo campaign.
    from annotation.models import CampaignAnnotator
    from demo.management.commands.load_demo import DEMO_CAMPAIGN

    members = CampaignAnnotator.objects.filter(campaign__name=DEMO_CAMPAIGN).values_list(
        "annotator__username", flat=True
    )
    assert sorted(members) == ["annotator", "annotator2"]


def test_the_demo_teacher_writes_a_small_run_with_the_demo_pool(capsys):
    from generation.models import FewShotPool, Teacher
    from generation.services.execution import run_execute
    from generation.services.runs import run_create

    call_command("load_demo")
    teacher = Teacher.objects.get(name="demo-tiny-gpt2")
    pool = FewShotPool.objects.get(name="demo")
    assert pool.examples.filter(relation__isnull=False).count() > 100

    run = run_create(
        teacher=teacher,
        pool=pool,
        corpus_name="demo-run",
        relations=["xNeed", "xWant"],
        heads=["PersonX goes fishing", "PersonX bakes bread"],
        n_per_pair=2,
        max_tokens=8,
    )
    run = run_execute(run=run)

    assert run.requests_done == 4 and run.errors == 0
    assert Corpus.objects.get(name="demo-run").triple_count == run.triples_written
