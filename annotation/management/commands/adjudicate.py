from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from annotation.models import Item, JudgmentValue
from annotation.services.adjudication import item_adjudicate
from core.handlers import AppCommand


class Command(AppCommand):
    help = (
        "Set an item's final label (it takes precedence over the crowd's in acceptance, "
        "exports and the critic's training labels), or clear it with --clear."
    )

    def add_arguments(self, parser):
        parser.add_argument("item", type=int, help="Item id (the review page and API show it).")
        choice = parser.add_mutually_exclusive_group(required=True)
        choice.add_argument(
            "--value",
            type=int,
            help="On the judgment scale: "
            + ", ".join(f"{v} {label}" for v, label in JudgmentValue.choices)
            + " (no label).",
        )
        choice.add_argument("--clear", action="store_true", help="Use the crowd's label again.")
        parser.add_argument("--by", help="Username recorded as the one who decided.")

    def handle(self, *args, item, value, clear, by, **options):
        found = Item.objects.select_related("campaign").filter(pk=item).first()
        if found is None:
            raise CommandError(f"No item {item}.")
        who = None
        if by:
            who = get_user_model().objects.filter(username=by).first()
            if who is None:
                raise CommandError(f"No user named {by!r}.")
        found = item_adjudicate(item=found, value=None if clear else value, by=who)
        if found.adjudicated_value is None:
            self.stdout.write(f"Item {found.pk}: final label cleared; the crowd's label is used.")
        else:
            label = JudgmentValue(found.adjudicated_value).label
            self.stdout.write(f"Item {found.pk}: final label {found.adjudicated_value} ({label}).")
