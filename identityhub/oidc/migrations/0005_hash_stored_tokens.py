"""Issue 9 item 10: tokens stored before COMPLIANT_BCP_RFC9700_TOKEN_STORAGE are hashed in place.

With the flag on, DOT keeps only `token_checksum` = SHA-256(token) and leaves `token` blank; it looks
every token up by that checksum. SHA-256 is deterministic, so blanking `token` (after making sure the
checksum is the SHA-256 of the value) keeps every session issued before working: its access token still
authenticates and its refresh token still rotates. Nothing to undo on the way back: with plain storage
DOT still looks tokens up by checksum, so the reverse is a no-op.
"""

import hashlib

from django.db import migrations

BATCH = 1000


def hash_stored_tokens(apps, schema_editor) -> int:
    """Blank the `token` column of every access and refresh token, keeping (or repairing) its checksum.
    Returns the number of rows changed."""
    changed = 0
    for name in ("AccessToken", "RefreshToken"):
        model = apps.get_model("oauth2_provider", name)
        while True:
            rows = list(model._default_manager.exclude(token="").only("pk", "token", "token_checksum")[:BATCH])
            if not rows:
                break
            for row in rows:
                row.token_checksum = hashlib.sha256(row.token.encode("utf-8")).hexdigest()
                row.token = ""
            model._default_manager.bulk_update(rows, ["token", "token_checksum"])
            changed += len(rows)
    return changed


class Migration(migrations.Migration):

    dependencies = [
        ("oidc", "0004_backchannel_logout"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
    ]

    operations = [
        migrations.RunPython(hash_stored_tokens, migrations.RunPython.noop, elidable=True),
    ]
