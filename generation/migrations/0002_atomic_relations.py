from django.db import migrations


def load_relations(apps, schema_editor):
    from corpora.relations import ATOMIC_2020_RELATIONS

    Relation = apps.get_model("generation", "Relation")
    for spec in ATOMIC_2020_RELATIONS:
        Relation.objects.update_or_create(
            name=spec["name"],
            defaults={
                "category": spec["category"],
                "description": spec["description"],
                "sentence_template": spec["sentence"],
                "prompt_template": spec["prompt"],
                "verbalization": spec["verbalization"],
                "is_builtin": True,
                "is_skd": spec["skd"],
            },
        )


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]
    operations = [migrations.RunPython(load_relations, migrations.RunPython.noop)]
