"""The buyer's pages, under /pay/."""
from django.urls import re_path

from payments import pages

app_name = "pay"
_SESSION = r"(?P<checkout_session_id>cs_[0-9A-Za-z]{1,40})"

urlpatterns = [
    re_path(r"^return/(?P<payment_event_id>pe_[0-9A-Za-z]{1,40})$", pages.buyer_return, name="return"),
    re_path(rf"^{_SESSION}$", pages.checkout_page, name="session"),
    re_path(rf"^{_SESSION}/confirm$", pages.checkout_confirm, name="session-confirm"),
    re_path(rf"^{_SESSION}/status$", pages.checkout_status, name="session-status"),
    re_path(rf"^{_SESSION}/result$", pages.checkout_result, name="session-result"),
    re_path(rf"^{_SESSION}/cancel$", pages.checkout_cancel, name="session-cancel"),
]
