class LedgerError(Exception):
    """A posting that the ledger refuses."""


class UnbalancedTransaction(LedgerError):
    pass


class UnknownAccount(LedgerError):
    pass
