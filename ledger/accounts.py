"""The chart of accounts a marketplace needs."""

PSP_RECEIVABLE = "assets:psp_receivable"  # money the PSP has captured for us and not paid out yet
BANK = "assets:bank"  # our bank account, where the PSP's payouts land
PSP_FEES = "expenses:psp_fees"
SELLER_LOSSES = "expenses:seller_losses"  # sellers' negative balances the platform wrote off
PLATFORM_COMMISSION = "revenue:platform_commission"
SELLER_PAYABLE_PREFIX = "liabilities:seller_payable:"  # what we owe each seller
PAYOUTS_IN_TRANSIT = "liabilities:payouts_in_transit"  # sellers' money on its way to their banks
DISPUTE_FEES = "expenses:dispute_fees"  # the PSP's dispute fees the platform bears (DISPUTE_FEE_PAYER)

FIXED_ACCOUNTS = {
    PSP_RECEIVABLE: ("Money held at the PSP", "asset"),
    BANK: ("Bank account", "asset"),
    PSP_FEES: ("PSP fees", "expense"),
    SELLER_LOSSES: ("Sellers' negative balances written off", "expense"),
    PLATFORM_COMMISSION: ("Platform commission", "revenue"),
    PAYOUTS_IN_TRANSIT: ("Payouts in transit to sellers' banks", "liability"),
    DISPUTE_FEES: ("Dispute fees borne by the platform", "expense"),
}


def seller_payable(seller_id: str) -> str:
    return f"{SELLER_PAYABLE_PREFIX}{seller_id}"
