"""Issue 13's smaller things: API key prefixes by the PSP's mode, one line for a refused admin page,
one line per import."""
import logging

import pytest
from django.core.management import call_command
from django.test import override_settings

from core.selectors import api_key_hash
from core.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("psp_key", "prefix"), [
    ("sk_test_sandbox", "mk_test_"), ("rk_test_abc", "mk_test_"), ("sk_live_abc", "mk_live_"),
    ("rk_live_abc", "mk_live_"), ("", "mk_live_"),
])
def test_api_key_prefix_says_test_or_live_by_the_psp(psp_key, prefix):
    with override_settings(PSP_API_KEY=psp_key):
        client, key = api_client_create(name="shop")
    assert key.startswith(prefix) and client.key_prefix == key[:12]
    assert client.key_hash == api_key_hash(key)


def test_keys_of_either_prefix_authenticate(client):
    from core.models import ApiClient

    live = "mk_live_" + "x" * 43
    ApiClient.objects.create(name="old", key_prefix=live[:12], key_hash=api_key_hash(live))
    with override_settings(PSP_API_KEY="sk_test_sandbox"):
        _, test_key = api_client_create(name="new")
    for key in (live, test_key):
        assert client.get("/api/v1/sellers", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_forbidden_admin_add_page_logs_one_line(client, django_user_model, capsys):
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    client.force_login(user)
    logger = logging.getLogger("django.request")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        assert client.get("/admin/payments/seller/add/").status_code == 403
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1
    record = records[0]
    assert record.levelname == "WARNING" and record.exc_info is None
    formatted = logging.Formatter("%(message)s").format(record)
    assert formatted == "Forbidden (Permission denied): /admin/payments/seller/add/"
    assert "Traceback" not in capsys.readouterr().err


def test_import_prints_its_result_once(tmp_path, capsys):
    report = tmp_path / "report.csv"
    report.write_text("balance_transaction_id,created,currency,gross,fee,net,reporting_category\n"
                      "txn_1,2024-01-02 10:00:00,usd,1000,59,941,charge\n")
    call_command("import_settlement", str(report))
    captured = capsys.readouterr()
    assert captured.out.count("report.csv: imported as file #") == 1
    assert "event=settlement_file_imported" not in captured.err + captured.out
