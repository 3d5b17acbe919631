"""Membership becomes mandatory: an annotator judges only the campaigns they belong to.
So that existing databases keep working, every annotator-role user becomes a member of
every campaign open now (as the open access before let them judge it)."""

from django.db import migrations


def members_of_open_campaigns(apps, schema_editor):
    Campaign = apps.get_model("annotation", "Campaign")
    CampaignAnnotator = apps.get_model("annotation", "CampaignAnnotator")
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name="annotator").first()
    if group is None:
        return
    annotator_ids = list(group.user_set.values_list("pk", flat=True))
    for campaign_id in Campaign.objects.filter(status="open").values_list("pk", flat=True):
        have = set(
            CampaignAnnotator.objects.filter(campaign_id=campaign_id).values_list(
                "annotator_id", flat=True
            )
        )
        CampaignAnnotator.objects.bulk_create(
            [
                CampaignAnnotator(campaign_id=campaign_id, annotator_id=pk)
                for pk in annotator_ids
                if pk not in have
            ],
            batch_size=1000,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0006_crowd_studies"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(members_of_open_campaigns, migrations.RunPython.noop)]
