"""The indexes of the tables every order writes, pinned (issue #8).

Each index is written with each insert, and with each update that changes one of its columns: an order's
claim and capture change its state, so every index on the order table costs every order three times. A
new index here should be a decision (a query that needs it), not Django's default: ``db_index`` on a
CharField, or a foreign key to a CharField primary key, adds a ``varchar_pattern_ops`` twin for
``LIKE 'x%'``, and a foreign key gets an index even where a unique constraint already leads with it.
"""
import pytest
from django.db import connection

PAY_IN_INDEXES = {
    "core_idempotencyrecord": {"core_idempotencyrecord_pkey", "idempotency_key_unique_per_client",
                               "core_idempotencyrecord_created_at_d1986507"},
    "payments_paymentevent": {"payments_paymentevent_pkey", "payment_event_client", "payment_event_state",
                              "payments_paymentevent_completed_at_f52078bf"},
    "payments_paymentorder": {"payments_paymentorder_pkey", "payment_order_one_per_seller", "payment_order_state",
                              "payment_order_seller", "payment_order_one_per_psp_reference",
                              "payments_paymentorder_completed_at_1f1021b2",
                              "payments_paymentorder_next_action_at_94fb6189"},
    "payments_paymentordertransition": {"payments_paymentordertransition_pkey", "order_transition_order",
                                        "payments_paymentordertransition_created_at_3a3fa397"},
    "payments_paymenteventtransition": {"payments_paymenteventtransition_pkey", "event_transition_event",
                                        "payments_paymenteventtransition_created_at_e9cf95c0"},
    "payments_pspcustomer": {"payments_pspcustomer_pkey", "psp_customer_one_per_buyer"},
    "ledger_ledgertransaction": {"ledger_ledgertransaction_pkey", "ledger_ledgertransaction_idempotency_key_key",
                                 # ledger.selectors asks idempotency_key__startswith: its LIKE 'x%' twin serves it
                                 "ledger_ledgertransaction_idempotency_key_90b0d8b0_like",
                                 "ledger_transaction_reference"},
    "ledger_entry": {"ledger_entry_pkey", "ledger_entry_transaction_id_c459e7a1", "ledger_entr_account_899a33_idx"},
    "wallet_walletmovement": {"wallet_walletmovement_pkey", "wallet_walletmovement_idempotency_key_key",
                              "wallet_walletmovement_wallet_id_c745dc6b", "wallet_movement_held"},
    # a capture's credit updates a slot: its balance is in no index (a HOT update), the unique pair serves both
    # the slot's lookup and the foreign key
    "wallet_walletslot": {"wallet_walletslot_pkey", "wallet_slot_one_per_number"},
}


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
                       [table])
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(PAY_IN_INDEXES))
def test_the_pay_in_tables_have_only_the_indexes_a_query_needs(table):
    assert _indexes(table) == PAY_IN_INDEXES[table]


@pytest.mark.django_db
def test_the_kept_indexes_are_still_used_by_the_lookups_they_serve():
    """The foreign keys whose own index went are looked up through the unique index that leads with them; an
    order's PSP reference through the partial unique index that replaced its plain one (issue #12)."""
    lookups = {
        "SELECT 1 FROM payments_paymentorder WHERE payment_event_id = 'pe_x'": "payment_order_one_per_seller",
        "SELECT 1 FROM payments_pspcustomer WHERE client_id = 'c'": "psp_customer_one_per_buyer",
        "SELECT 1 FROM core_idempotencyrecord WHERE client_id = 'c'": "idempotency_key_unique_per_client",
        "SELECT 1 FROM ledger_entry WHERE account_id = 1": "ledger_entr_account_899a33_idx",
        # Partial (psp_reference <> ''): a lookup by a given reference implies it (a join must say it: see
        # reconciliation.matching.candidates).
        "SELECT 1 FROM payments_paymentorder WHERE psp_reference = 'pi_x'": "payment_order_one_per_psp_reference",
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query, index in lookups.items():
            cursor.execute("EXPLAIN " + query)
            plan = "\n".join(row for (row,) in cursor.fetchall())
            assert index in plan, plan
