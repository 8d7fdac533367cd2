"""Re-encrypt every TOTP secret with the current (first) key of TWOFACTOR_ENCRYPTION_KEYS.

Rotation: put the new key first and keep the old ones after it (every key still
decrypts), deploy, run this command, then drop the old keys. The secrets are
never printed; only how many rows were rewritten.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from twofactor import crypto
from twofactor.models import TOTPDevice


class Command(BaseCommand):
    help = "Re-encrypt every TOTP secret with the current encryption key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        rotated = 0
        last_pk = 0
        while True:
            # Keyset pagination by pk: each batch is its own short transaction, so a large
            # table is never locked as a whole and a crash midway loses nothing (a row
            # already rotated is simply rotated again next time).
            with transaction.atomic():
                batch = list(
                    TOTPDevice.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .order_by("pk")
                    .only("pk", "encrypted_secret")[:batch_size]
                )
                if not batch:
                    break
                for device in batch:
                    device.encrypted_secret = crypto.rotate_secret(device.encrypted_secret)
                # Only this column is written: the replay guard and throttle columns of a
                # row are left as they are (the row lock keeps logins out meanwhile).
                TOTPDevice.objects.bulk_update(batch, ["encrypted_secret"])
            rotated += len(batch)
            last_pk = batch[-1].pk
        self.stdout.write(f"Re-encrypted {rotated} TOTP secret{'s' if rotated != 1 else ''}.")
