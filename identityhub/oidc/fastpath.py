"""One switch for the hot path's shortcuts (issue 11), for the differential tests.

With `ENABLED` (the default and the only production setting) the validator writes and reads the
per-exchange rows with plain SQL (`fastsql`), the authorization view issues the code on the request
it has already validated, and ID tokens are signed with the key ring's loaded key. Off, every one of
those goes through DOT / oauthlib / jwcrypto as before: tests/oidc/test_fast_path.py sends the same
requests both ways and compares the answers and what is stored.
"""

ENABLED = True


def enabled() -> bool:
    return ENABLED
