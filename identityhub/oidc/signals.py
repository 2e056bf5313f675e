"""Keep every process's client cache honest: any change to a client bumps the generation token."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.models import Application

from .models import ClientProfile
from .selectors import CLIENTS, bump_generation


@receiver(post_save, sender=Application)
@receiver(post_delete, sender=Application)
@receiver(post_save, sender=ClientProfile)
@receiver(post_delete, sender=ClientProfile)
def clients_changed(sender, **kwargs) -> None:
    bump_generation(CLIENTS)


@receiver(m2m_changed, sender=ClientProfile.households.through)
def client_households_changed(sender, action: str, **kwargs) -> None:
    if action.startswith("post_"):
        bump_generation(CLIENTS)
