"""Sign-in links are bound to the issuer they were made under (issue 9 item 7).

A link is social-auth's UserSocialAuth(provider = upstream id, uid = subject); the sign-in pipeline
now also wants `extra_data["iss"]` to equal the upstream's current issuer. Existing links record
the issuer their upstream has now, so nobody is locked out. Links of an upstream that no longer
exists are left without one: they are dropped at their next use.
"""

from django.db import migrations

GOOGLE_ISSUER = "https://accounts.google.com"


def issuer_of(type: str, issuer: str) -> str:  # accounts.models.issuer_of, frozen here
    if type == "mock":
        return ""
    return (issuer or GOOGLE_ISSUER).rstrip("/")


def record_issuers(apps, schema_editor):
    Upstream = apps.get_model("accounts", "Upstream")
    UserSocialAuth = apps.get_model("social_django", "UserSocialAuth")
    issuers = {u.pk: issuer_of(u.type, u.issuer) for u in Upstream.objects.all()}
    for link in UserSocialAuth.objects.filter(provider__in=list(issuers)).iterator():
        data = link.extra_data if isinstance(link.extra_data, dict) else {}
        if "iss" not in data:
            link.extra_data = {**data, "iss": issuers[link.provider]}
            link.save(update_fields=["extra_data"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_person_verbose_name"),
        ("social_django", "0022_nonce_timestamp_index"),
    ]

    operations = [migrations.RunPython(record_issuers, migrations.RunPython.noop)]
