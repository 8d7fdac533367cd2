import unicodedata

from django.db import migrations, models


def fill_email_keys(apps, schema_editor):
    """Every existing address gets its lookup key (NFKC + case folding); `email` is kept.

    The rule is copied, not imported: a migration must not change when the code does.
    Two accounts whose addresses fold to one key stop the migration with both ids
    named, for a person to decide which account keeps the address.
    """
    User = apps.get_model("accounts", "User")
    seen = {}
    for pk, email in list(User.objects.values_list("pk", "email")):
        folded = unicodedata.normalize("NFKC", email.strip()).casefold()
        key = unicodedata.normalize("NFKC", folded).strip()
        if key in seen:
            raise RuntimeError(f"Users {seen[key]} and {pk} have the same address once normalised.")
        seen[key] = pk
        User.objects.filter(pk=pk).update(email_key=key)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_device_tokens")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_key",
            field=models.CharField(editable=False, max_length=320, null=True),
        ),
        migrations.RunPython(fill_email_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="email_key",
            field=models.CharField(editable=False, max_length=320, unique=True),
        ),
    ]
