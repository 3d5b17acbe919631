"""Artifact keys: every student run gets a UUID naming its folder (new runs are written
under students/<key>/; existing ones keep their stored folder) and a checksum of its
trained model (empty for existing runs: not verified)."""

import uuid

from django.db import migrations, models


def give_keys(apps, schema_editor):
    StudentRun = apps.get_model("distillation", "StudentRun")
    for run in StudentRun.objects.only("pk").iterator():
        StudentRun.objects.filter(pk=run.pk).update(artifact_key=uuid.uuid4())


class Migration(migrations.Migration):

    dependencies = [
        ("distillation", "0003_job_kind_spelling"),
    ]

    operations = [
        migrations.AddField(
            model_name="studentrun",
            name="artifact_key",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="studentrun",
            name="artifact_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="studentrun",
            name="checksum",
            field=models.CharField(
                blank=True,
                default="",
                help_text="SHA-256 of the trained model's files (core.artifacts), kept when "
                "training ends; empty before, and for runs trained before checksums: not "
                "verified.",
                max_length=64,
            ),
            preserve_default=False,
        ),
    ]
