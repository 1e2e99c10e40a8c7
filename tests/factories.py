from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point

from couriers.models import Courier
from orders.models import Order

# Avenida Paulista, São Paulo
SAO_PAULO = (-23.5614, -46.6559)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("s3cret-pass-123")


class CourierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Courier

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Courier Number{n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    consumer_name = "Maria Consumer"
    destination = factory.LazyFunction(lambda: Point(SAO_PAULO[1], SAO_PAULO[0], srid=4326))
