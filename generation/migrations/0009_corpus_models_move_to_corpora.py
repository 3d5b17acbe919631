"""The corpus models now live in `corpora` (same tables): references to them
change in Django's state only."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0004_corpus_models_in_corpora'),
        ('corpora', '0001_initial'),
        ('critic', '0002_corpus_models_in_corpora'),
        ('distillation', '0002_corpus_models_in_corpora'),
        ('generation', '0008_teacher_limits_and_run_lease'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='scoreset',
                    name='corpus',
                ),
                migrations.RemoveField(
                    model_name='triple',
                    name='corpus',
                ),
                migrations.AlterField(
                    model_name='generationrun',
                    name='corpus',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='generation_runs', to='corpora.corpus'),
                ),
                migrations.RemoveField(
                    model_name='triple',
                    name='head',
                ),
                migrations.RemoveField(
                    model_name='triple',
                    name='relation',
                ),
                migrations.AlterField(
                    model_name='fewshotexample',
                    name='relation',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='corpora.relation'),
                ),
                migrations.AlterField(
                    model_name='generationbatch',
                    name='relation',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='corpora.relation'),
                ),
                migrations.RemoveField(
                    model_name='triplescore',
                    name='score_set',
                ),
                migrations.RemoveField(
                    model_name='triple',
                    name='import_job',
                ),
                migrations.RemoveField(
                    model_name='triplescore',
                    name='triple',
                ),
                migrations.AlterField(
                    model_name='generationrun',
                    name='relations',
                    field=models.ManyToManyField(to='corpora.relation'),
                ),
                migrations.DeleteModel(
                    name='Corpus',
                ),
                migrations.DeleteModel(
                    name='Event',
                ),
                migrations.DeleteModel(
                    name='Relation',
                ),
                migrations.DeleteModel(
                    name='ScoreSet',
                ),
                migrations.DeleteModel(
                    name='Triple',
                ),
                migrations.DeleteModel(
                    name='TripleScore',
                ),
            ],
            database_operations=[],
        ),
    ]
