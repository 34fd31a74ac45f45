from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class PingApi(APIView):
    """Authenticated no-op: the cost of our API stack with no business logic (the benchmark's baseline)."""

    @extend_schema(responses={200: inline_serializer("Ping", {"ok": serializers.BooleanField(),
                                                             "client": serializers.CharField()})},
                   operation_id="ping")
    def get(self, request):
        return Response({"ok": True, "client": request.user.id})
