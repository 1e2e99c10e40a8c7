from __future__ import annotations

from rest_framework import serializers


# A courier as other payloads name it (an order's courier, a fleet entry). A comment, not a
# docstring: the docstring would become the schema's description.
class CourierRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
