from django.apps import AppConfig


class CouriersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "couriers"

    def ready(self) -> None:
        from django.db.models.signals import pre_save

        from couriers.models import User
        from couriers.receivers import user_password_changed_tokens_revoke

        pre_save.connect(user_password_changed_tokens_revoke, sender=User, dispatch_uid="couriers.password_tokens")
