"""The disputes API's output shapes."""
from rest_framework import serializers

from core.serializers import ObjectTypeField


class DisputeOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("dispute")
    psp_dispute = serializers.CharField(source="psp_dispute_id", help_text="The PSP's dispute id (dp_...).")
    seller = serializers.CharField(source="seller_id")
    payment_order = serializers.CharField(source="payment_order_id")
    amount = serializers.IntegerField(help_text="Disputed amount, minor units.")
    currency = serializers.CharField()
    fee = serializers.IntegerField(help_text="The PSP's dispute fee, minor units of fee_currency.")
    fee_currency = serializers.CharField()
    fee_payer = serializers.CharField(help_text="seller or platform: who bears the fee.")
    state = serializers.CharField(help_text="needs_response, under_review, won or lost.")
    reason = serializers.CharField()
    evidence_due_by = serializers.DateTimeField(source="due_by", allow_null=True)
    problem = serializers.CharField(help_text="Why nothing was booked (an operator looks at it); empty when booked.")
    withdrawn = serializers.DateTimeField(source="withdrawn_at", allow_null=True,
                                          help_text="When the amount (and fee) were taken from the seller.")
    reinstated = serializers.DateTimeField(source="reinstated_at", allow_null=True,
                                           help_text="When a won dispute's money came back.")
    created = serializers.DateTimeField(source="created_at")
    closed = serializers.DateTimeField(source="closed_at", allow_null=True)
