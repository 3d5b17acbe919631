"""The corpus models now live in `corpora` (same tables): references to them
change in Django's state only."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_campaignannotator_claim_position'),
        ('corpora', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='campaign',
                    name='corpus',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='corpora.corpus'),
                ),
                migrations.AlterField(
                    model_name='item',
                    name='head',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='corpora.event'),
                ),
                migrations.AlterField(
                    model_name='item',
                    name='relation',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='corpora.relation'),
                ),
                migrations.AlterField(
                    model_name='item',
                    name='triple',
                    field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='corpora.triple'),
                ),
            ],
            database_operations=[],
        ),
    ]
