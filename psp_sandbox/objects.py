"""Stripe-shaped objects at the output boundary.

The operations in ``api.py`` build only the fields the sandbox reasons about.  Stripe returns
every field of an object, nullable ones as ``null``, so ``complete`` fills in whatever is
missing with the value Stripe would send for a test-mode card payment: ``null`` where the field
is nullable, ``{}``/``[]`` or a fully populated nested object where it is not (and where a card
payment always carries one, e.g. a charge's ``payment_method_details``).  Fields already set are
kept as they are; completing twice changes nothing.

Standard library only: the field lists are written out here, the conformance test
(``tests/test_conformance.py``) checks them against the official SDK's annotations for the
pinned API version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

API_VERSION = "2026-10-28.endive"  # the API version these shapes follow (stripe-python 16.1.0)


def _names(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# Per-payment-method-type keys (all null except the one of the object's type).
_PI_PMO_TYPES = _names(
    """acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit bancontact billie bizum
    blik boleto card card_present cashapp crypto customer_balance eps fpx giropay grabpay ideal interac_present
    kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco naver_pay nz_bank_account oxxo p24
    pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay samsung_pay satispay scalapay
    sepa_debit sequra sofort sunbit swish twint upi us_bank_account wechat_pay zip"""
)
_CHARGE_PMD_TYPES = _names(
    """ach_credit_transfer ach_debit acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit
    bacs_debit bancontact billie bizum blik boleto card card_present cashapp crypto customer_balance eps fpx
    giropay grabpay ideal interac_present kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco
    naver_pay nz_bank_account oxxo p24 pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay
    samsung_pay satispay scalapay sepa_credit_transfer sepa_debit sequra sofort stripe_account sunbit swish twint
    upi us_bank_account wechat wechat_pay zip"""
)
_REFUND_DEST_TYPES = _names(
    """affirm afterpay_clearpay alipay alma amazon_pay au_bank_transfer blik br_bank_transfer card cashapp crypto
    customer_cash_balance eps eu_bank_transfer gb_bank_transfer giropay grabpay jp_bank_transfer klarna mb_way
    multibanco mx_bank_transfer nz_bank_transfer p24 paynow paypal pix revolut scalapay sofort swish
    th_bank_transfer twint us_bank_transfer wechat_pay zip"""
)
_PM_TYPES = _names(
    """acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit bancontact billie bizum
    blik boleto card card_present cashapp crypto custom customer_balance eps fpx giropay grabpay ideal
    interac_present kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco naver_pay nz_bank_account
    oxxo p24 pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay samsung_pay satispay scalapay
    sepa_debit sequra sofort sunbit swish twint upi us_bank_account wechat_pay zip"""
)

# Nullable fields per object (Stripe sends them as null when there is nothing to say).
_PI_NULLS = _names(
    """allowed_payment_method_types application application_fee_amount automatic_payment_methods canceled_at
    cancellation_reason customer customer_account description excluded_payment_method_types hooks
    last_payment_error latest_charge managed_payments next_action on_behalf_of payment_details payment_method
    payment_method_configuration_details payment_method_options payment_record presentment_details processing
    receipt_email review setup_future_usage shipping source statement_descriptor statement_descriptor_suffix
    transfer_data transfer_group"""
)
_PI_CARD_OPTION_NULLS = _names(
    """capture_method installments mandate_options network request_extended_authorization
    request_incremental_authorization request_multicapture request_overcapture request_three_d_secure
    require_cvc_recollection setup_credential_usage setup_future_usage statement_descriptor_suffix_kana
    statement_descriptor_suffix_kanji stored_credential_usage"""
)
_NEXT_ACTION_NULLS = _names(
    """alipay_handle_redirect blik_authorize boleto_display_details card_await_notification
    cashapp_handle_redirect_or_display_qr_code display_bank_transfer_instructions klarna_display_qr_code
    konbini_display_details multibanco_display_details oxxo_display_details paynow_display_qr_code
    pix_display_qr_code promptpay_display_qr_code redirect_to_url swish_handle_redirect_or_display_qr_code
    upi_handle_redirect_or_display_qr_code use_stripe_sdk verify_with_microdeposits wechat_pay_display_qr_code
    wechat_pay_redirect_to_android_app wechat_pay_redirect_to_ios_app"""
)
# A PaymentIntent's last_payment_error; a top-level error object also has user_message.
_ERROR_NULLS = _names(
    """advice_code charge code decline_code doc_url message network_advice_code network_decline_code param
    payment_intent payment_method payment_method_type request_log_url setup_intent source"""
)
_CHARGE_NULLS = _names(
    """application application_fee application_fee_amount authorization_code balance_transaction
    calculated_statement_descriptor customer description failure_balance_transaction failure_code failure_message
    fraud_details level3 on_behalf_of outcome payment_intent payment_method payment_method_details
    presentment_details radar_options receipt_email receipt_number receipt_url refunds review shipping source
    source_transfer statement_descriptor statement_descriptor_suffix transfer transfer_data transfer_group"""
)
_CHARGE_CARD_NULLS = _names(
    """amount_authorized authorization_code brand capture_before checks country description
    electronic_commerce_indicator extended_authorization fingerprint funding iin incremental_authorization
    installments issuer last4 mandate moto multicapture network network_token network_transaction_id overcapture
    regulated_status setup_credential_usage stored_credential_usage three_d_secure transaction_link_id wallet"""
)
_OUTCOME_NULLS = _names(
    """advice_code network_advice_code network_decline_code network_status reason risk_level risk_score rule
    seller_message"""
)
_REFUND_NULLS = _names(
    """balance_transaction charge customer customer_account description destination_details
    failure_balance_transaction failure_reason instructions_email metadata next_action payment_intent
    payment_method pending_reason presentment_details reason receipt_number source_transfer_reversal status
    transfer_reversal"""
)
_EVENT_NULLS = _names("account api_version context request")
_CUSTOMER_NULLS = _names(
    """address balance business_name cash_balance currency customer_account default_source deleted delinquent
    description discount email individual_name invoice_credit_balance invoice_prefix invoice_settings metadata
    name next_invoice_sequence phone preferred_locales shipping sources subscriptions tax tax_exempt tax_ids
    test_clock"""
)
_INVOICE_SETTINGS_NULLS = _names("custom_fields default_payment_method footer rendering_options")
_PM_NULLS = (*_PM_TYPES, *_names("allow_redisplay customer customer_account metadata radar_options"))
_PM_CARD_NULLS = _names(
    """checks country description display_brand fingerprint generated_from iin issuer networks regulated_status
    three_d_secure_usage wallet"""
)
_ADDRESS_NULLS = _names("city country line1 line2 postal_code state")
_CHECKS_NULLS = _names("address_line1_check address_postal_code_check cvc_check")

# Stripe's magic test payment methods -> (brand, last4, funding); anything else looks like a Visa.
_CARDS: dict[str, tuple[str, str, str]] = {
    "visa": ("visa", "4242", "credit"),
    "us": ("visa", "4242", "credit"),
    "visa_debit": ("visa", "5556", "debit"),
    "mastercard": ("mastercard", "4444", "credit"),
    "mastercard_debit": ("mastercard", "8210", "debit"),
    "amex": ("amex", "8431", "credit"),
    "discover": ("discover", "1117", "credit"),
    "chargeDeclined": ("visa", "0002", "credit"),
    "chargeDeclinedInsufficientFunds": ("visa", "9995", "credit"),
    "chargeDeclinedLostCard": ("visa", "9987", "credit"),
    "chargeDeclinedStolenCard": ("visa", "9979", "credit"),
    "chargeDeclinedExpiredCard": ("visa", "0069", "credit"),
    "chargeDeclinedIncorrectCvc": ("visa", "0127", "credit"),
    "chargeDeclinedProcessingError": ("visa", "0119", "credit"),
    "chargeDeclinedFraudulent": ("visa", "0019", "credit"),
    "threeDSecure2Required": ("visa", "3220", "credit"),
    "threeDSecureRequired": ("visa", "3063", "credit"),
    "authenticationRequired": ("visa", "3155", "credit"),
}


def _digest(value: str, n: int = 24) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def _card(pm_id: Any) -> tuple[str, str, str]:
    name = str(pm_id or "").removeprefix("pm_card_").removeprefix("visa_")
    return _CARDS.get(name, ("visa", "4242", "credit"))


def _exp_year() -> int:
    return time.gmtime().tm_year + 3


def _fill(obj: dict[str, Any], nulls: tuple[str, ...] = (), **values: Any) -> dict[str, Any]:
    """A copy of ``obj`` with each missing key set: from ``values`` (callables get the copy), else null."""
    out = dict(obj)
    for key, value in values.items():
        if key not in out:
            out[key] = value(out) if callable(value) else value
    for key in nulls:
        out.setdefault(key, None)
    return out


def _nested(obj: dict[str, Any], key: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Complete ``obj[key]`` in place with ``fn`` when it is an object."""
    if isinstance(obj.get(key), dict):
        obj[key] = fn(obj[key])


def _address(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    return _fill(obj or {}, _ADDRESS_NULLS)


def _billing_details(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    out = _fill(obj or {}, _names("email name phone tax_id"), address=lambda o: _address())
    _nested(out, "address", _address)
    return out


# -- PaymentIntent ------------------------------------------------------------
def _card_options(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, _PI_CARD_OPTION_NULLS, request_three_d_secure="automatic")


def _payment_method_options(obj: dict[str, Any]) -> dict[str, Any]:
    out = _fill(obj, _PI_PMO_TYPES)
    _nested(out, "card", _card_options)
    return out


def _next_action(obj: dict[str, Any]) -> dict[str, Any]:
    out = _fill(obj, _NEXT_ACTION_NULLS, type="use_stripe_sdk")
    _nested(out, "redirect_to_url", lambda r: _fill(r, _names("return_url url")))
    return out


def payment_intent(pi: dict[str, Any]) -> dict[str, Any]:
    """Complete a PaymentIntent."""
    types = pi.get("payment_method_types") or ["card"]
    out = _fill(
        pi,
        _PI_NULLS,
        amount=0,
        amount_capturable=0,
        amount_received=0,
        amount_details=lambda o: {
            **dict.fromkeys(_names("discount_amount error line_items shipping tax")),
            "tip": {"amount": None},
        },
        capture_method="automatic_async",
        client_secret=lambda o: f"{o.get('id')}_secret_{_digest(str(o.get('id')), 25)}",
        confirmation_method="automatic",
        created=lambda o: int(time.time()),
        livemode=False,
        metadata=lambda o: {},
        payment_method_types=lambda o: list(types),
        payment_method_options=lambda o: _payment_method_options({"card": {}}) if "card" in types else None,
    )
    _nested(out, "automatic_payment_methods", _automatic_payment_methods)
    _nested(out, "payment_method_options", _payment_method_options)
    _nested(out, "next_action", _next_action)
    _nested(out, "last_payment_error", lambda e: _error(e, top=False))
    _nested(out, "latest_charge", charge)
    _nested(out, "payment_method", payment_method)
    return out


def _automatic_payment_methods(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, enabled=False, allow_redirects=lambda o: "always" if o["enabled"] else None)


# -- errors -------------------------------------------------------------------
def _error(err: dict[str, Any], top: bool = True) -> dict[str, Any]:
    out = _fill(err, (*_ERROR_NULLS, "user_message") if top else _ERROR_NULLS, type="api_error")
    _nested(out, "payment_intent", payment_intent)
    _nested(out, "payment_method", payment_method)
    return out


def error(err: dict[str, Any]) -> dict[str, Any]:
    """Complete the object inside an error response's ``{"error": ...}``."""
    return _error(err, top=True)


# -- Charge -------------------------------------------------------------------
def _charge_card(ch: dict[str, Any]) -> dict[str, Any]:
    brand, last4, funding = _card(ch.get("payment_method"))
    ok = ch.get("status") == "succeeded"
    return _fill(
        {
            "amount_authorized": ch.get("amount") if ok else None,
            "brand": brand,
            "checks": _fill({"cvc_check": "pass" if ok else None}, _CHECKS_NULLS),
            "country": "US",
            "exp_month": 12,
            "exp_year": _exp_year(),
            "extended_authorization": {"status": "disabled"},
            "fingerprint": _digest(f"{brand}{last4}", 16),
            "funding": funding,
            "incremental_authorization": {"status": "unavailable"},
            "last4": last4,
            "multicapture": {"status": "unavailable"},
            "network": brand,
            "network_token": {"used": False},
            "overcapture": {"maximum_amount_capturable": ch.get("amount") or 0, "status": "unavailable"},
            "regulated_status": "unregulated",
        },
        _CHARGE_CARD_NULLS,
    )


def _outcome(ch: dict[str, Any]) -> dict[str, Any] | None:
    status = ch.get("status")
    if status == "succeeded":
        values = {
            "network_status": "approved_by_network",
            "risk_level": "normal",
            "risk_score": int(_digest(str(ch.get("id")), 4), 16) % 60,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    elif status == "failed":
        code = ch.get("failure_code") or "card_declined"
        values = {
            "network_status": "declined_by_network",
            "reason": "generic_decline" if code == "card_declined" else code,
            "risk_level": "normal",
            "risk_score": int(_digest(str(ch.get("id")), 4), 16) % 60,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    else:
        return None
    return _fill(values, _OUTCOME_NULLS)


def _payment_method_details(ch: dict[str, Any]) -> dict[str, Any] | None:
    if not ch.get("payment_method"):
        return None
    return _fill({"card": _charge_card(ch), "type": "card"}, _CHARGE_PMD_TYPES)


def charge(ch: dict[str, Any]) -> dict[str, Any]:
    """Complete a Charge."""
    ok = ch.get("status") == "succeeded"
    out = _fill(
        ch,
        _CHARGE_NULLS,
        amount=0,
        amount_captured=lambda o: o["amount"] if ok else 0,
        amount_refunded=0,
        balance_transaction=lambda o: "txn_" + _digest(str(o.get("id"))) if ok else None,
        billing_details=lambda o: _billing_details(),
        captured=ok,
        created=lambda o: int(time.time()),
        disputed=False,
        livemode=False,
        metadata=lambda o: {},
        outcome=_outcome,
        paid=ok,
        payment_method_details=_payment_method_details,
        refunded=False,
        status="pending",
    )
    _nested(out, "billing_details", _billing_details)
    _nested(out, "outcome", lambda o: _fill(o, _OUTCOME_NULLS, type="authorized"))
    _nested(out, "payment_method_details", lambda d: _fill(d, _CHARGE_PMD_TYPES, type="card"))
    _nested(out, "payment_intent", payment_intent)
    return out


# -- Refund -------------------------------------------------------------------
def _destination_details(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, _REFUND_DEST_TYPES, type="card")


def refund(rf: dict[str, Any]) -> dict[str, Any]:
    """Complete a Refund."""
    ok = rf.get("status") == "succeeded"
    out = _fill(
        rf,
        _REFUND_NULLS,
        amount=0,
        balance_transaction=lambda o: "txn_" + _digest(str(o.get("id"))) if ok else None,
        created=lambda o: int(time.time()),
        destination_details=lambda o: _destination_details(
            {
                "card": {
                    "reference": None,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            }
        ),
        metadata=lambda o: {},
    )
    _nested(out, "destination_details", _destination_details)
    _nested(out, "charge", charge)
    _nested(out, "payment_intent", payment_intent)
    return out


# -- Customer, PaymentMethod --------------------------------------------------
def customer(cus: dict[str, Any]) -> dict[str, Any]:
    """Complete a Customer."""
    out = _fill(
        cus,
        _CUSTOMER_NULLS,
        balance=0,
        created=lambda o: int(time.time()),
        delinquent=False,
        invoice_credit_balance=lambda o: {},
        invoice_prefix=lambda o: _digest(str(o.get("id")), 8).upper(),
        invoice_settings=lambda o: _fill({}, _INVOICE_SETTINGS_NULLS),
        livemode=False,
        metadata=lambda o: {},
        next_invoice_sequence=1,
        preferred_locales=lambda o: [],
        tax_exempt="none",
    )
    _nested(out, "invoice_settings", lambda s: _fill(s, _INVOICE_SETTINGS_NULLS))
    _nested(out, "address", _address)
    return out


def _pm_card(pm_id: Any, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    brand, last4, funding = _card(pm_id)
    out = _fill(
        obj or {},
        _PM_CARD_NULLS,
        brand=brand,
        checks=lambda o: _fill({"cvc_check": "unchecked"}, _CHECKS_NULLS),
        country="US",
        display_brand=lambda o: o["brand"].replace("amex", "american_express"),
        exp_month=12,
        exp_year=lambda o: _exp_year(),
        fingerprint=lambda o: _digest(f"{o['brand']}{o.get('last4', last4)}", 16),
        funding=funding,
        last4=last4,
        networks=lambda o: {"available": [o["brand"]], "preferred": None},
        regulated_status="unregulated",
        three_d_secure_usage=lambda o: {"supported": True},
    )
    _nested(out, "checks", lambda c: _fill(c, _CHECKS_NULLS))
    return out


def payment_method(pm: dict[str, Any]) -> dict[str, Any]:
    """Complete a PaymentMethod (a card unless it says otherwise)."""
    out = _fill(
        pm,
        _PM_NULLS,
        allow_redisplay="unspecified",
        billing_details=lambda o: _billing_details(),
        created=lambda o: int(time.time()),
        livemode=False,
        metadata=lambda o: {},
        type="card",
        card=lambda o: _pm_card(o.get("id")) if o["type"] == "card" else None,
    )
    _nested(out, "billing_details", _billing_details)
    _nested(out, "card", lambda c: _pm_card(out.get("id"), c))
    _nested(out, "customer", customer)
    return out


# -- Event, lists -------------------------------------------------------------
def event(evt: dict[str, Any]) -> dict[str, Any]:
    """Complete an Event (and the object it carries)."""
    out = _fill(
        evt,
        _EVENT_NULLS,
        api_version=API_VERSION,
        created=lambda o: int(time.time()),
        livemode=False,
        pending_webhooks=0,
        request=lambda o: {"id": None, "idempotency_key": None},
    )
    _nested(out, "request", lambda r: _fill(r, _names("id idempotency_key")))
    if isinstance(out.get("data"), dict):
        data = _fill(out["data"], ("previous_attributes",))
        _nested(data, "object", complete)
        out["data"] = data
    return out


def _list(lst: dict[str, Any]) -> dict[str, Any]:
    out = _fill(lst, has_more=False, data=lambda o: [])
    out["data"] = [complete(item) if isinstance(item, dict) else item for item in out["data"]]
    return out


_BY_OBJECT: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "payment_intent": payment_intent,
    "charge": charge,
    "refund": refund,
    "event": event,
    "customer": customer,
    "payment_method": payment_method,
    "list": _list,
    "search_result": _list,
}


def complete(obj: Any) -> Any:
    """Complete a response body: a Stripe object (by its ``object``), a list, or ``{"error": {...}}``.

    Anything else (sandbox-only payloads, raw strings) is returned unchanged.
    """
    if not isinstance(obj, dict):
        return obj
    fn = _BY_OBJECT.get(str(obj.get("object")))
    if fn is not None:
        return fn(obj)
    if "object" not in obj and isinstance(obj.get("error"), dict):
        return {**obj, "error": error(obj["error"])}
    return obj
