"""Support's 2FA reset from the command line, for a user who lost their phone.

The same service as the All users page, so the user gets the same event and
e-mail. --actor names the staff member responsible (recorded on the event);
without it the event records no actor and "command line" as the place, which
is still a trace: the reason is mandatory either way.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.middleware import ActionOrigin, action_origin
from accounts.models import normalize_email_address
from accounts.user_agents import COMMAND_LINE_AGENT
from twofactor import services as twofactor_services

COMMAND_LINE_ORIGIN = ActionOrigin(user_agent=COMMAND_LINE_AGENT)
ResetRule = twofactor_services.ResetRule
# The service's rules, in the words of this command's options.
REFUSALS = {
    ResetRule.NO_REASON: "--reason must say why (it is recorded and the user is told).",
    ResetRule.OWN_ACCOUNT: "Staff cannot reset their own two-factor authentication.",
    ResetRule.STAFF_TARGET: "--actor is not a superuser: only a superuser can reset the "
    "two-factor authentication of a staff member.",
}


class Command(BaseCommand):
    help = "Turn off a user's two-factor authentication (device and backup codes), with a reason."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="The user whose 2FA is reset.")
        parser.add_argument("--reason", required=True, help="Why (recorded; the user is told).")
        parser.add_argument(
            "--actor", default="", help="E-mail of the staff member doing the reset (recorded)."
        )

    def handle(self, *args, email: str, reason: str, actor: str, **options) -> None:
        users = get_user_model()._default_manager
        user = users.filter(email_key=normalize_email_address(email)).first()
        if user is None:
            raise CommandError(f"No user with the e-mail {email}.")
        staff = None
        if actor:
            staff = users.filter(
                email_key=normalize_email_address(actor), is_staff=True, is_active=True
            ).first()
            # The same right as Reset 2FA on All users: the record must name someone allowed.
            if staff is None or not staff.has_perm("accounts.reset_two_factor"):
                raise CommandError(
                    f"--actor {actor} is not an active staff user with the right to reset 2FA."
                )
        if not twofactor_services.is_two_factor_enabled(user=user):
            raise CommandError(f"{user.email} does not have two-factor authentication on.")
        try:
            with action_origin(COMMAND_LINE_ORIGIN):
                twofactor_services.reset_two_factor(user=user, actor=staff, reason=reason)
        except twofactor_services.ResetRefused as error:
            raise CommandError(REFUSALS[error.rule]) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Two-factor authentication is reset for {user.email}; they were e-mailed."
            )
        )
