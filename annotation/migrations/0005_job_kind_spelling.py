"""Aggregation jobs are spelled as every job kind now is, `app.kind`."""

from django.db import migrations


def rename(apps, schema_editor, old, new):
    apps.get_model("jobs", "Job").objects.filter(kind=old).update(kind=new)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_corpus_models_in_corpora"),
        ("jobs", "0005_job_queue"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, "campaign_aggregate", "annotation.aggregate"),
            lambda apps, editor: rename(apps, editor, "annotation.aggregate", "campaign_aggregate"),
        )
    ]
