"""Critic scores move out of the triple table into score sets (see TripleScore).

On PostgreSQL the score table is partitioned by score set. Scores already written
become one set per corpus, in force.
"""

import django.db.models.deletion
from django.db import migrations, models

PARTITIONED = """
DROP TABLE generation_triplescore;
CREATE TABLE generation_triplescore (
    score_set_id bigint NOT NULL,
    triple_id bigint NOT NULL,
    score double precision NOT NULL,
    PRIMARY KEY (score_set_id, triple_id)
) PARTITION BY LIST (score_set_id);
"""


def create_score_index(apps, schema_editor):
    """The model's (score_set, score) index; on PostgreSQL every partition holds one
    set, so the index there is on the score alone (a third faster to build)."""
    columns = "score" if schema_editor.connection.vendor == "postgresql" else "score_set_id, score"
    schema_editor.execute(f"CREATE INDEX triplescore_set_score ON generation_triplescore ({columns})")


def partition_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITIONED)


def keep_written_scores(apps, schema_editor):
    Triple = apps.get_model("generation", "Triple")
    Corpus = apps.get_model("generation", "Corpus")
    ScoreSet = apps.get_model("generation", "ScoreSet")
    postgresql = schema_editor.connection.vendor == "postgresql"
    scored = Triple.objects.filter(score__isnull=False).values_list("corpus_id", flat=True)
    for corpus_id in sorted(set(scored.distinct())):
        score_set = ScoreSet.objects.create(corpus_id=corpus_id)
        if postgresql:
            schema_editor.execute(
                f"CREATE TABLE generation_triplescore_{score_set.pk} "
                f"PARTITION OF generation_triplescore FOR VALUES IN ({score_set.pk})"
            )
        schema_editor.execute(
            "INSERT INTO generation_triplescore (score_set_id, triple_id, score) "
            "SELECT %s, id, score FROM generation_triple WHERE corpus_id = %s "
            "AND score IS NOT NULL",
            [score_set.pk, corpus_id],
        )
        Corpus.objects.filter(pk=corpus_id).update(score_set=score_set)


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0004_corpus_imports"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScoreSet",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "corpus",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="score_sets",
                        to="generation.corpus",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="corpus",
            name="score_set",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="generation.scoreset",
            ),
        ),
        migrations.CreateModel(
            name="TripleScore",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "score_set",
                        "triple",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "score_set",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="generation.scoreset",
                    ),
                ),
                (
                    "triple",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="scores",
                        to="generation.triple",
                    ),
                ),
                ("score", models.FloatField()),
            ],
        ),
        migrations.RunPython(partition_on_postgresql, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="triplescore",
                    index=models.Index(fields=["score_set", "score"], name="triplescore_set_score"),
                )
            ],
            database_operations=[
                migrations.RunPython(create_score_index, migrations.RunPython.noop)
            ],
        ),
        migrations.RunPython(keep_written_scores, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="triple", name="triple_corpus_score"),
        migrations.RemoveField(model_name="triple", name="score"),
    ]
