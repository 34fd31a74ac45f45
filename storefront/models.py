"""A small demo shop: a merchant of ours, not part of the payment system. It knows the marketplace
only through its public API (an API key, sellers' ids) and its signed webhooks."""
import uuid

from django.db import models


class ShopConfig(models.Model):
    """The shop's credentials at the marketplace (one row): its API key and its webhook secret."""

    api_base = models.CharField(max_length=200)
    api_key = models.CharField(max_length=200)
    webhook_endpoint = models.CharField(max_length=40, blank=True)
    webhook_secret = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.api_base


class ShopSeller(models.Model):
    key = models.SlugField(primary_key=True)
    name = models.CharField(max_length=100)
    marketplace_id = models.CharField(max_length=40, help_text="The seller's id at the marketplace (sel_…).")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.SlugField(primary_key=True)
    seller = models.ForeignKey(ShopSeller, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=100)
    price = models.PositiveIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3, default="eur")

    class Meta:
        ordering = ["seller_id", "price"]

    def __str__(self) -> str:
        return self.name


class ShopOrder(models.Model):
    """One cart sent to the marketplace's hosted payment page; its status comes from the webhooks."""

    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment"
        PAID = "paid"
        PARTIALLY_PAID = "partially_paid"
        NOT_PAID = "not_paid"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    checkout_session = models.CharField(max_length=40, unique=True)
    lines = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT)
    paid_sellers = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.checkout_session} {self.status}"


class ReceivedEvent(models.Model):
    """Every webhook the shop accepted, once (the marketplace delivers at least once)."""

    id = models.CharField(primary_key=True, max_length=40)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"
