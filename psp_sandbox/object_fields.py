"""The field lists of the Stripe-shaped objects that ``objects.complete`` fills in: per object, the nullable
fields and the per-payment-method-type keys, written out for the pinned API version (checked against the
official SDK's annotations by ``tests/test_conformance.py``).
"""

from __future__ import annotations


def names(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# Per-payment-method-type keys (all null except the one of the object's type).
PI_PMO_TYPES = names(
    """acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit bancontact billie bizum
    blik boleto card card_present cashapp crypto customer_balance eps fpx giropay grabpay ideal interac_present
    kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco naver_pay nz_bank_account oxxo p24
    pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay samsung_pay satispay scalapay
    sepa_debit sequra sofort sunbit swish twint upi us_bank_account wechat_pay zip"""
)
CHARGE_PMD_TYPES = names(
    """ach_credit_transfer ach_debit acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit
    bacs_debit bancontact billie bizum blik boleto card card_present cashapp crypto customer_balance eps fpx
    giropay grabpay ideal interac_present kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco
    naver_pay nz_bank_account oxxo p24 pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay
    samsung_pay satispay scalapay sepa_credit_transfer sepa_debit sequra sofort stripe_account sunbit swish twint
    upi us_bank_account wechat wechat_pay zip"""
)
REFUND_DEST_TYPES = names(
    """affirm afterpay_clearpay alipay alma amazon_pay au_bank_transfer blik br_bank_transfer card cashapp crypto
    customer_cash_balance eps eu_bank_transfer gb_bank_transfer giropay grabpay jp_bank_transfer klarna mb_way
    multibanco mx_bank_transfer nz_bank_transfer p24 paynow paypal pix revolut scalapay sofort swish
    th_bank_transfer twint us_bank_transfer wechat_pay zip"""
)
PM_TYPES = names(
    """acss_debit affirm afterpay_clearpay alipay alma amazon_pay au_becs_debit bacs_debit bancontact billie bizum
    blik boleto card card_present cashapp crypto custom customer_balance eps fpx giropay grabpay ideal
    interac_present kakao_pay klarna konbini kr_card link mb_way mobilepay multibanco naver_pay nz_bank_account
    oxxo p24 pay_by_bank payco paynow paypal paypay payto pix promptpay revolut_pay samsung_pay satispay scalapay
    sepa_debit sequra sofort sunbit swish twint upi us_bank_account wechat_pay zip"""
)

# Nullable fields per object (Stripe sends them as null when there is nothing to say).
PI_NULLS = names(
    """allowed_payment_method_types application application_fee_amount automatic_payment_methods canceled_at
    cancellation_reason customer customer_account description excluded_payment_method_types hooks
    last_payment_error latest_charge managed_payments next_action on_behalf_of payment_details payment_method
    payment_method_configuration_details payment_method_options payment_record presentment_details processing
    receipt_email review setup_future_usage shipping source statement_descriptor statement_descriptor_suffix
    transfer_data transfer_group"""
)
PI_CARD_OPTION_NULLS = names(
    """capture_method installments mandate_options network request_extended_authorization
    request_incremental_authorization request_multicapture request_overcapture request_three_d_secure
    require_cvc_recollection setup_credential_usage setup_future_usage statement_descriptor_suffix_kana
    statement_descriptor_suffix_kanji stored_credential_usage"""
)
NEXT_ACTION_NULLS = names(
    """alipay_handle_redirect blik_authorize boleto_display_details card_await_notification
    cashapp_handle_redirect_or_display_qr_code display_bank_transfer_instructions klarna_display_qr_code
    konbini_display_details multibanco_display_details oxxo_display_details paynow_display_qr_code
    pix_display_qr_code promptpay_display_qr_code redirect_to_url swish_handle_redirect_or_display_qr_code
    upi_handle_redirect_or_display_qr_code use_stripe_sdk verify_with_microdeposits wechat_pay_display_qr_code
    wechat_pay_redirect_to_android_app wechat_pay_redirect_to_ios_app"""
)
# A PaymentIntent's last_payment_error; a top-level error object also has user_message.
ERROR_NULLS = names(
    """advice_code charge code decline_code doc_url message network_advice_code network_decline_code param
    payment_intent payment_method payment_method_type request_log_url setup_intent source"""
)
CHARGE_NULLS = names(
    """application application_fee application_fee_amount authorization_code balance_transaction
    calculated_statement_descriptor customer description failure_balance_transaction failure_code failure_message
    fraud_details level3 on_behalf_of outcome payment_intent payment_method payment_method_details
    presentment_details radar_options receipt_email receipt_number receipt_url refunds review shipping source
    source_transfer statement_descriptor statement_descriptor_suffix transfer transfer_data transfer_group"""
)
CHARGE_CARD_NULLS = names(
    """amount_authorized authorization_code brand capture_before checks country description
    electronic_commerce_indicator extended_authorization fingerprint funding iin incremental_authorization
    installments issuer last4 mandate moto multicapture network network_token network_transaction_id overcapture
    regulated_status setup_credential_usage stored_credential_usage three_d_secure transaction_link_id wallet"""
)
OUTCOME_NULLS = names(
    """advice_code network_advice_code network_decline_code network_status reason risk_level risk_score rule
    seller_message"""
)
REFUND_NULLS = names(
    """balance_transaction charge customer customer_account description destination_details
    failure_balance_transaction failure_reason instructions_email metadata next_action payment_intent
    payment_method pending_reason presentment_details reason receipt_number source_transfer_reversal status
    transfer_reversal"""
)
EVENT_NULLS = names("account api_version context request")
CUSTOMER_NULLS = names(
    """address balance business_name cash_balance currency customer_account default_source deleted delinquent
    description discount email individual_name invoice_credit_balance invoice_prefix invoice_settings metadata
    name next_invoice_sequence phone preferred_locales shipping sources subscriptions tax tax_exempt tax_ids
    test_clock"""
)
INVOICE_SETTINGS_NULLS = names("custom_fields default_payment_method footer rendering_options")
PM_NULLS = (*PM_TYPES, *names("allow_redisplay customer customer_account metadata radar_options"))
PM_CARD_NULLS = names(
    """checks country description display_brand fingerprint generated_from iin issuer networks regulated_status
    three_d_secure_usage wallet"""
)
ADDRESS_NULLS = names("city country line1 line2 postal_code state")
CHECKS_NULLS = names("address_line1_check address_postal_code_check cvc_check")


# Stripe's magic test payment methods -> (brand, last4, funding); anything else looks like a Visa.
CARDS: dict[str, tuple[str, str, str]] = {
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
