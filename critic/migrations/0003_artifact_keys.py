"""Artifact keys: every critic version gets a UUID naming its folder (new versions are
written under critics/<key>/; existing ones keep their stored path) and a checksum of its
files (empty for existing versions: not verified). The embedding cache gets a row per
encoder; the encoders of existing fast versions keep their folder, embeddings/<encoder key>.
"""

import uuid

from django.db import migrations, models


def give_keys(apps, schema_editor):
    CriticVersion = apps.get_model("critic", "CriticVersion")
    for version in CriticVersion.objects.only("pk").iterator():
        CriticVersion.objects.filter(pk=version.pk).update(artifact_key=uuid.uuid4())


def adopt_embedding_folders(apps, schema_editor):
    CriticVersion = apps.get_model("critic", "CriticVersion")
    EmbeddingSet = apps.get_model("critic", "EmbeddingSet")
    keys = (
        CriticVersion.objects.filter(tier="fast")
        .exclude(encoder_key="")
        .values_list("encoder_key", flat=True)
        .distinct()
    )
    for key in sorted(set(keys)):
        EmbeddingSet.objects.get_or_create(
            encoder_key=key, defaults={"artifact_key": uuid.uuid4(), "folder": f"embeddings/{key}"}
        )


class Migration(migrations.Migration):

    dependencies = [
        ("critic", "0002_corpus_models_in_corpora"),
    ]

    operations = [
        migrations.AddField(
            model_name="criticversion",
            name="artifact_key",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="criticversion",
            name="artifact_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="criticversion",
            name="checksum",
            field=models.CharField(
                blank=True,
                default="",
                help_text="SHA-256 of the artifact's files when saved (core.artifacts); empty "
                "for versions saved before checksums: not verified.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name="EmbeddingSet",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("encoder_key", models.CharField(max_length=200, unique=True)),
                ("artifact_key", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("folder", models.CharField(help_text="Relative to the artifact store.", max_length=500)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(adopt_embedding_folders, migrations.RunPython.noop),
    ]
