"""Membership changes made by any path (config, admin, shell) keep the staff flag in step."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Membership, User
from .roles import sync_staff_flag


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def membership_changed(sender, instance: Membership, **kwargs) -> None:
    user = User.objects.filter(pk=instance.user_id).first()
    if user is not None:
        sync_staff_flag(user)
