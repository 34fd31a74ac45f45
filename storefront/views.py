"""The shop's pages: products, a cart (in the session), Buy, a thank-you page; and its webhook."""
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core.money import format_money
from storefront import services
from storefront.models import Product, ShopOrder


def _cart(request) -> dict[str, int]:
    return request.session.setdefault("cart", {})


def _context(request, **extra):
    lines = services.cart_lines(_cart(request))
    total = sum(line.total for line in lines)
    return {"lines": [{"line": li, "total": format_money(li.total, li.product.currency)} for li in lines],
            "count": sum(li.quantity for li in lines), "total": format_money(total, "eur") if lines else "", **extra}


@require_GET
def shop(request):
    products = [{"product": p, "price": format_money(p.price, p.currency)}
                for p in Product.objects.select_related("seller")]
    return render(request, "storefront/shop.html", _context(request, products=products))


@require_POST
def cart_add(request, sku: str):
    get_object_or_404(Product, pk=sku)
    cart = _cart(request)
    cart[sku] = min(cart.get(sku, 0) + 1, 20)
    request.session.modified = True
    return HttpResponseRedirect(reverse("storefront:shop"))


@require_POST
def cart_remove(request, sku: str):
    _cart(request).pop(sku, None)
    request.session.modified = True
    return HttpResponseRedirect(reverse("storefront:shop"))


@require_POST
def buy(request):
    """The Buy button: the cart goes to the marketplace's hosted payment page."""
    thanks = request.build_absolute_uri(reverse("storefront:thanks")) + "?session={CHECKOUT_SESSION_ID}"
    if not request.session.session_key:
        request.session.save()
    try:
        url = services.cart_checkout(cart=_cart(request), success_url=thanks,
                                     cancel_url=request.build_absolute_uri(reverse("storefront:shop")),
                                     buyer=request.session.session_key or "guest")
    except services.ShopError as exc:
        return render(request, "storefront/shop.html", _context(request, error=str(exc), products=[]), status=502)
    request.session["cart"] = {}
    return HttpResponseRedirect(url)


@require_GET
def thanks(request):
    order = ShopOrder.objects.filter(checkout_session=request.GET.get("session", "")).first()
    if order is None:
        return HttpResponseRedirect(reverse("storefront:shop"))
    return render(request, "storefront/thanks.html", _context(request, order=order))


@require_GET
def order_status(request, session: str):
    order = get_object_or_404(ShopOrder, checkout_session=session)
    return JsonResponse({"status": order.status, "paid_sellers": order.paid_sellers})


@csrf_exempt
@require_POST
def webhook(request):
    try:
        services.webhook_receive(payload=request.body, signature=request.headers.get("Marketplace-Signature", ""))
    except services.BadSignature:
        return HttpResponseBadRequest("bad signature")
    return HttpResponse("ok")
