from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import RETRY_AFTER_HEADER, error_responses


class PingApi(APIView):
    """Authenticated no-op: the cost of our API stack with no business logic (the benchmark's baseline)."""

    @extend_schema(responses={200: inline_serializer("Ping", {"ok": serializers.BooleanField(),
                                                             "client": serializers.CharField()}),
                              **error_responses()},
                   parameters=[RETRY_AFTER_HEADER], operation_id="ping")
    def get(self, request):
        return Response({"ok": True, "client": request.user.id})
