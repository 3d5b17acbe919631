"""The corpus models now live in `corpora` (same tables): references to them
change in Django's state only."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('corpora', '0001_initial'),
        ('distillation', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='studentevaluation',
                    name='corpus',
                    field=models.OneToOneField(help_text="Where the student's outputs are written (origin 'student').", on_delete=django.db.models.deletion.PROTECT, related_name='student_evaluation', to='corpora.corpus'),
                ),
                migrations.AlterField(
                    model_name='studentevaluation',
                    name='relations',
                    field=models.ManyToManyField(blank=True, to='corpora.relation'),
                ),
                migrations.AlterField(
                    model_name='studentrun',
                    name='corpus',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='student_runs', to='corpora.corpus'),
                ),
            ],
            database_operations=[],
        ),
    ]
