"""A wallet's slots (issue #8, a hot seller): credits in flight at once do not queue on the wallet's row, and every
movement and every reader that locks the wallet sees its whole balance (the row's and its slots')."""
import threading

import pytest
from django.db import connections, transaction
from django.utils import timezone

from wallet import selectors
from wallet.models import Wallet, WalletSlot
from wallet.services import (
    WALLET_SLOTS,
    Debit,
    wallet_available_locked,
    wallet_credit,
    wallet_debit,
    wallet_negative_locked,
    wallets_available_locked,
    wallets_debit,
)

pytestmark = pytest.mark.django_db(transaction=True)


def slots(owner: str) -> list[int]:
    return list(WalletSlot.objects.filter(wallet__owner_id=owner).order_by("slot").values_list("balance", flat=True))


def row(owner: str) -> tuple[int, bool]:
    wallet = Wallet.objects.get(owner_id=owner)
    return wallet.balance, wallet.negative_since is not None


def credit(owner: str, amount: int, key: str) -> None:
    wallet_credit(owner_id=owner, currency="usd", amount=amount, idempotency_key=key, reason="t", held=False)


def books_agree(owner: str) -> bool:
    return (selectors.wallet_balances()[(owner, "usd")] == selectors.wallet_movement_sums()[(owner, "usd")]
            == selectors.wallet_balance(owner_id=owner, currency="usd"))


class Threads:
    """Run functions in threads of their own (each on its own connection), keeping what they raise."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, fn, *args) -> threading.Thread:
        def run():
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001
                self.errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        return thread

    def join(self) -> None:
        for thread in self.threads:
            thread.join(20)
        assert not any(t.is_alive() for t in self.threads) and self.errors == []


def test_a_new_wallet_opens_with_its_slots_and_a_credit_lands_in_one():
    credit("s", 100, "c1")
    assert slots("s") == [100] + [0] * (WALLET_SLOTS - 1) and row("s") == (0, False)
    assert selectors.wallet_balance(owner_id="s", currency="usd") == 100 and books_agree("s")


def test_credits_in_flight_at_once_each_hold_a_slot_of_their_own():
    """As many credit transactions as slots, all open at once: had they queued on one row, they could not all
    reach the barrier before their commits."""
    credit("hot", 1, "open")
    barrier = threading.Barrier(WALLET_SLOTS, timeout=10)

    def one(n):
        with transaction.atomic():
            credit("hot", 10 * n, f"c{n}")
            barrier.wait()

    threads = Threads()
    for n in range(1, WALLET_SLOTS + 1):
        threads.start(one, n)
    threads.join()
    assert all(slots("hot")) and sum(slots("hot")) == 1 + 10 * sum(range(1, WALLET_SLOTS + 1))  # one each
    assert row("hot") == (0, False) and books_agree("hot")


def test_more_credits_than_slots_queue_on_one_and_lose_nothing():
    barrier = threading.Barrier(4 * WALLET_SLOTS, timeout=10)
    credit("hot", 1, "open")

    def one(n):
        barrier.wait()
        credit("hot", n, f"c{n}")

    threads = Threads()
    for n in range(1, 4 * WALLET_SLOTS + 1):
        threads.start(one, n)
    threads.join()
    assert selectors.wallet_balance(owner_id="hot", currency="usd") == 1 + sum(range(1, 4 * WALLET_SLOTS + 1))
    assert row("hot") == (0, False) and books_agree("hot")


def _held_credit(owner: str, amount: int, key: str, inside: threading.Event, release: threading.Event) -> None:
    with transaction.atomic():
        credit(owner, amount, key)
        inside.set()
        release.wait(10)


def test_a_debit_waits_for_a_credit_in_flight_and_folds_every_slot():
    credit("s", 500, "c0")
    inside, release, debited = threading.Event(), threading.Event(), threading.Event()
    threads = Threads()
    threads.start(_held_credit, "s", 300, "c1", inside, release)
    assert inside.wait(10)

    def debit():
        wallet_debit(owner_id="s", currency="usd", amount=700, idempotency_key="d1", reason="t")
        debited.set()

    threads.start(debit)
    assert not debited.wait(0.5)  # it waits on the credit's slot, the wallet's row taken
    release.set()
    threads.join()
    assert row("s") == (100, False) and slots("s") == [0] * WALLET_SLOTS and books_agree("s")
    credit("s", 5, "c2")  # back into a slot
    assert sorted(slots("s"))[-1] == 5 and selectors.wallet_balance(owner_id="s", currency="usd") == 105


def test_a_payout_lock_sees_a_credit_in_flight_once_it_commits():
    credit("s", 500, "c0")
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []
    threads = Threads()
    threads.start(_held_credit, "s", 300, "c1", inside, release)
    assert inside.wait(10)

    def look():
        with transaction.atomic():
            seen.append(wallet_available_locked(owner_id="s", currency="usd", as_of=timezone.now()))
            seen.append(wallets_available_locked(wallets=[("s", "usd")], as_of=timezone.now())[("s", "usd")])

    threads.start(look)
    threads.threads[-1].join(0.5)
    assert seen == []  # waiting on the credit's slot
    release.set()
    threads.join()
    assert seen == [800, 800]


def test_a_batch_debit_folds_each_wallets_slots():
    credit("a", 100, "ca")
    credit("b", 40, "cb")
    assert wallets_debit(debits=[Debit("a", "usd", 30, "da", "t"), Debit("b", "usd", 50, "db", "t")]) == 2
    assert (row("a"), slots("a")) == ((70, False), [0] * WALLET_SLOTS)
    assert (row("b"), slots("b")) == ((-10, True), [0] * WALLET_SLOTS)
    assert books_agree("a") and books_agree("b")


def test_in_a_negative_episode_credits_go_to_the_row_and_end_it_there():
    credit("s", 100, "c1")
    below, _ = wallet_debit(owner_id="s", currency="usd", amount=300, idempotency_key="d1", reason="t")
    assert row("s") == (-200, True) and slots("s") == [0] * WALLET_SLOTS
    credit("s", 50, "c2")
    assert row("s") == (-150, True) and slots("s") == [0] * WALLET_SLOTS
    assert Wallet.objects.get().negative_since_movement_id == below.id
    with transaction.atomic():
        assert wallet_negative_locked(owner_id="s", currency="usd").owed == 150
    credit("s", 150, "c3")
    assert row("s") == (0, False)
    credit("s", 7, "c4")
    assert row("s") == (0, False) and sum(slots("s")) == 7 and books_agree("s")


def test_a_credit_queued_on_a_slot_while_a_debit_takes_the_wallet_below_zero_goes_to_the_row():
    """The debit holds every slot (its fold) when the credit's statement starts, so the credit queues on one; the
    debit commits the wallet below zero and its slots closed: the credit, rechecking the slot it then gets, finds
    it closed and moves the row instead, where the episode goes on (it would have ended in a slot unseen)."""
    credit("s", 100, "c0")
    inside, release, credited = threading.Event(), threading.Event(), threading.Event()
    below = []

    def debit():
        with transaction.atomic():
            below.append(wallet_debit(owner_id="s", currency="usd", amount=300, idempotency_key="d1", reason="t")[0])
            inside.set()
            release.wait(10)

    def late_credit():
        credit("s", 50, "c1")
        credited.set()

    threads = Threads()
    threads.start(debit)
    assert inside.wait(10)
    threads.start(late_credit)
    assert not credited.wait(0.5)  # every slot is the debit's
    release.set()
    threads.join()
    assert row("s") == (-150, True) and slots("s") == [0] * WALLET_SLOTS
    assert Wallet.objects.get().negative_since_movement_id == below[0].id and books_agree("s")
    assert not WalletSlot.objects.filter(open=True).exists()
    assert selectors.wallets_negative()[0][2] == -150
    credit("s", 150, "c2")  # square: the episode ends on the row, the slots open again
    assert row("s") == (0, False) and WalletSlot.objects.filter(open=True).count() == WALLET_SLOTS
    credit("s", 9, "c3")
    assert row("s") == (0, False) and sum(slots("s")) == 9 and books_agree("s")


def test_a_wallet_without_slots_moves_on_its_row():
    Wallet.objects.create(owner_id="old", currency="usd", balance=0)
    credit("old", 100, "c1")
    wallet_debit(owner_id="old", currency="usd", amount=30, idempotency_key="d1", reason="t")
    assert row("old") == (70, False) and slots("old") == [] and books_agree("old")
