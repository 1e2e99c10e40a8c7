from django.apps import AppConfig
from django.core import checks


class TrackingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tracking"

    def ready(self) -> None:
        # Orders announce, tracking listens: the arrow runs tracking -> orders only.
        from orders.signals import order_event_recorded, orders_changed
        from tracking.receivers import order_event_ping_record, orders_changed_publish
        from tracking.rules import tracking_rules_check

        order_event_recorded.connect(order_event_ping_record, dispatch_uid="tracking.order_event_ping_record")
        orders_changed.connect(orders_changed_publish, dispatch_uid="tracking.orders_changed_publish")
        checks.register(tracking_rules_check)
