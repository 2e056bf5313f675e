"""Household admins used to be made superusers; they are staff only now (DESIGN.md "Roles").

Operators are re-declared with the config's `operators:` list (or `createsuperuser`). A superuser
with a usable password made by `createsuperuser` keeps the flag.
"""

from django.contrib.auth.hashers import is_password_usable
from django.db import migrations


def demote_household_admins(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(is_superuser=True, memberships__role="admin").distinct():
        if not is_password_usable(user.password):
            user.is_superuser = False
            user.save(update_fields=["is_superuser"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(demote_household_admins, migrations.RunPython.noop)]
