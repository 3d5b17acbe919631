"""The corpus models moved from `generation` to `corpora` (issue 16). A database at the
migration state before the move, holding corpora, triples, score sets, campaigns,
judgments, critic versions, presets and jobs, migrates forward without losing a row,
on SQLite and on PostgreSQL; the moved tables keep working afterwards (a new corpus
gets its partition, the admin's permissions follow the models)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# The last migration of each app before the move (the project's state at that commit).
BEFORE_MOVE = [
    ("jobs", "0003_progress_message"),
    ("generation", "0008_teacher_limits_and_run_lease"),
    ("annotation", "0003_campaignannotator_claim_position"),
    ("critic", "0001_initial"),
    ("distillation", "0001_initial"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("auth", "0012_alter_user_first_name_max_length"),
]
PROJECT_APPS = {"jobs", "corpora", "generation", "annotation", "critic", "distillation"}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _latest():
    executor = MigrationExecutor(connection)
    return [
        node
        for node in executor.loader.graph.leaf_nodes()
        if node[0] in PROJECT_APPS or node[0] in {"auth", "contenttypes"}
    ]


def _populate(apps) -> dict[str, int]:
    """Rows of every kind the move touches, written with the models as they were."""
    User = apps.get_model("auth", "User")
    Job = apps.get_model("jobs", "Job")
    Corpus = apps.get_model("generation", "Corpus")
    Relation = apps.get_model("generation", "Relation")
    Event = apps.get_model("generation", "Event")
    Triple = apps.get_model("generation", "Triple")
    ScoreSet = apps.get_model("generation", "ScoreSet")
    Campaign = apps.get_model("annotation", "Campaign")
    Item = apps.get_model("annotation", "Item")
    Assignment = apps.get_model("annotation", "Assignment")
    Judgment = apps.get_model("annotation", "Judgment")
    CriticVersion = apps.get_model("critic", "CriticVersion")
    FilterPreset = apps.get_model("critic", "FilterPreset")
    ContentType = apps.get_model("contenttypes", "ContentType")

    ContentType.objects.get_or_create(app_label="generation", model="triple")
    user = User.objects.create(username="before-the-move")
    job = Job.objects.create(
        kind="corpus_import", task_name="generation.run_import_job", status="failed", params={}
    )
    corpus = Corpus.objects.create(name="before", created_by=user, triple_count=40)
    relations = list(Relation.objects.order_by("pk")[:4])
    assert relations, "the data migration's relations are missing"
    events = [Event.objects.create(text=f"PersonX moves house {i}") for i in range(10)]
    triples = Triple.objects.bulk_create(
        Triple(
            corpus=corpus,
            head=events[i % 10],
            relation=relations[i % 4],
            tail=f"tail {i}",
            tail_key=1000 + i,
            split="train" if i % 5 else "dev",
            import_job=job,
            source_fields='{"valid": 2}',
        )
        for i in range(40)
    )
    score_set = ScoreSet.objects.create(corpus=corpus)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TABLE generation_triplescore_{score_set.pk} "
                f"PARTITION OF generation_triplescore FOR VALUES IN ({score_set.pk})"
            )
        for n, triple in enumerate(triples):
            cursor.execute(
                "INSERT INTO generation_triplescore (score_set_id, triple_id, score) "
                "VALUES (%s, %s, %s)",
                [score_set.pk, triple.pk, n / 40],
            )
    Corpus.objects.filter(pk=corpus.pk).update(score_set=score_set)

    campaign = Campaign.objects.create(name="judged before", corpus=corpus, created_by=user)
    now = timezone.now()
    for n, triple in enumerate(triples[:12]):
        item = Item.objects.create(
            campaign=campaign,
            triple=triple,
            head=triple.head,
            relation=triple.relation,
            tail=triple.tail,
            position=n,
        )
        assignment = Assignment.objects.create(
            campaign=campaign,
            item=item,
            annotator=user,
            status="submitted",
            leased_at=now,
            expires_at=now + timedelta(minutes=10),
        )
        Judgment.objects.create(
            campaign=campaign,
            item=item,
            annotator=user,
            assignment=assignment,
            value=2 if n % 2 else -1,
            created_at=now,
        )
    version = CriticVersion.objects.create(
        corpus=corpus, number=1, tier="fast", encoder="all-MiniLM-L6-v2"
    )
    FilterPreset.objects.create(corpus=corpus, name="kept", version=version, threshold=0.5)
    return {
        "corpus": corpus.pk,
        "score_set": score_set.pk,
        "campaign": campaign.pk,
        "job": job.pk,
        "relations": Relation.objects.count(),
    }


def test_a_populated_database_moves_to_corpora_without_losing_a_row(transactional_db):
    executor = _migrate([("corpora", None), *BEFORE_MOVE])
    try:
        before = _populate(executor.loader.project_state(BEFORE_MOVE).apps)
    finally:
        _migrate(_latest())

    from django.contrib.contenttypes.models import ContentType

    from annotation.models import Campaign, Item, Judgment
    from corpora.models import Corpus, Event, Relation, Triple, TripleScore
    from corpora.services import corpus_create
    from critic.models import FilterPreset
    from jobs.models import Job

    corpus = Corpus.objects.get(pk=before["corpus"])
    assert corpus.name == "before" and corpus.score_set_id == before["score_set"]
    assert Relation.objects.count() == before["relations"]
    assert Event.objects.filter(text__startswith="PersonX moves house").count() == 10
    triples = Triple.objects.filter(corpus=corpus)
    assert triples.count() == 40
    assert triples.filter(split="dev").count() == 8
    assert {t.source_fields_dict["valid"] for t in triples} == {2}
    scored = Triple.objects.with_score(corpus).filter(corpus=corpus, score__gte=0.5)
    assert scored.count() == 20
    assert TripleScore.objects.filter(score_set_id=before["score_set"]).count() == 40

    campaign = Campaign.objects.get(pk=before["campaign"])
    assert campaign.corpus == corpus
    assert Item.objects.filter(campaign=campaign).count() == 12
    assert Judgment.objects.filter(campaign=campaign).count() == 12
    assert {i.triple.corpus_id for i in Item.objects.filter(campaign=campaign)} == {corpus.pk}
    assert FilterPreset.objects.get(corpus=corpus).name == "kept"

    # The stored task name follows the task, so a retry still finds it.
    moved_job = Job.objects.get(pk=before["job"])
    assert (moved_job.task_name, moved_job.kind) == ("corpora.run_import_job", "corpora.import")
    # Admin permissions follow the models.
    assert ContentType.objects.filter(app_label="corpora", model="triple").exists()
    assert not ContentType.objects.filter(app_label="generation", model="triple").exists()

    # The moved tables keep working: a new corpus gets its own partition (PostgreSQL's
    # trigger) and takes triples.
    fresh = corpus_create(name="after the move")
    Triple.objects.create(
        corpus=fresh,
        head=Event.objects.first(),
        relation=Relation.objects.first(),
        tail="x",
        tail_key=1,
    )
    assert Triple.objects.filter(corpus=fresh).count() == 1
