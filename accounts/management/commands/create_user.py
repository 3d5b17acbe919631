from django.core.management.base import CommandError

from accounts.services import user_create_with_role
from core.handlers import AppCommand
from core.roles import ROLES


class Command(AppCommand):
    help = "Create a user with a role (researcher or annotator), or reset their password."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args, username, role, password, **options):
        try:
            user_create_with_role(username=username, password=password, role=role)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{role} {username} ready")
