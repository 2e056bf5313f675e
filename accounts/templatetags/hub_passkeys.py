"""`{% passkeys_section %}`: the account page's passkeys (accounts/templates/accounts/passkeys_section.html)."""

from django import template

register = template.Library()


@register.inclusion_tag("accounts/passkeys_section.html", takes_context=True)
def passkeys_section(context) -> dict:
    from accounts.passkey_views import account_context

    request = context["request"]
    return {"request": request, "csrf_token": context.get("csrf_token"), "messages": context.get("messages"),
            **account_context(request)}
