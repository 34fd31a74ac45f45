"""Stripe.js and Elements, the sandbox's way: the card field lives on the PSP's origin.

* ``GET /js/v1/sandbox.js``: a small library a merchant's page loads with a publishable key, in
  Stripe.js' shape: ``SandboxPay(pk).elements().create("card").mount(el)``, ``card.on("change")``
  and ``pay.createPaymentMethod({type: "card", card})``, which resolves ``{paymentMethod}`` or
  ``{error}``.
* ``GET /elements/card?key=pk_test_…&origin=<the merchant page's origin>``: the card field, an
  iframe on the sandbox's origin. The buyer types the card there; on the library's request it posts
  it from that origin to ``POST /v1/payment_methods`` with the publishable key, and hands the page
  only the ``pm_`` id (with brand and last four). The merchant's page never sees the number: the
  browser's same-origin policy keeps it out of the iframe, and messages go only to the origin named
  in ``origin`` and are taken only from it.
"""

from __future__ import annotations

LIBRARY_JS = r"""/* psp-sandbox card field library (Stripe.js' shape). */
(function () {
  "use strict";
  var script = document.currentScript;
  var ORIGIN = new URL(script.src).origin;

  function CardElement(pay, options) {
    this._pay = pay;
    this._options = options || {};
    this._handlers = {};
    this.iframe = null;
  }
  CardElement.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    if (!host) { throw new Error("SandboxPay: nothing to mount the card field in"); }
    var iframe = document.createElement("iframe");
    iframe.src = ORIGIN + "/elements/card?key=" + encodeURIComponent(this._pay._key) +
      "&origin=" + encodeURIComponent(window.location.origin);
    iframe.title = this._options.title || "Secure card details";
    iframe.className = this._options.className || "card-field";
    iframe.setAttribute("scrolling", "no");
    host.appendChild(iframe);
    this.iframe = iframe;
    this._pay._field = this;
    return this;
  };
  CardElement.prototype.on = function (name, handler) {
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  CardElement.prototype.focus = function () {
    if (this.iframe) { this.iframe.contentWindow.postMessage({type: "sandbox:focus"}, ORIGIN); }
  };
  CardElement.prototype._emit = function (name, detail) {
    (this._handlers[name] || []).forEach(function (handler) { handler(detail); });
  };

  function SandboxPay(publishableKey) {
    if (!(this instanceof SandboxPay)) { return new SandboxPay(publishableKey); }
    if (!/^pk_(test|live)_/.test(publishableKey || "")) {
      throw new Error("SandboxPay: a publishable key (pk_test_...) is required");
    }
    this._key = publishableKey;
    this._field = null;
    this._pending = {};
    this._seq = 0;
    var self = this;
    window.addEventListener("message", function (event) {
      var field = self._field;
      if (event.origin !== ORIGIN || !field || event.source !== field.iframe.contentWindow) { return; }
      var msg = event.data || {};
      if (msg.type === "sandbox:result" && self._pending[msg.id]) {
        var resolve = self._pending[msg.id];
        delete self._pending[msg.id];
        resolve(msg.error ? {error: msg.error} : {paymentMethod: msg.paymentMethod});
      } else if (msg.type === "sandbox:change") {
        field._emit("change", msg.detail || {});
      } else if (msg.type === "sandbox:ready") {
        field._emit("ready", {});
      }
    });
  }
  SandboxPay.prototype.elements = function () {
    var pay = this;
    return {
      create: function (type, options) {
        if (type !== "card") { throw new Error("SandboxPay: only the card element exists"); }
        return new CardElement(pay, options);
      }
    };
  };
  SandboxPay.prototype.createPaymentMethod = function (options) {
    var pay = this;
    var field = (options && options.card) || pay._field;
    return new Promise(function (resolve) {
      if (!field || !field.iframe) {
        resolve({error: {type: "validation_error", message: "The card field is not on the page."}});
        return;
      }
      var id = ++pay._seq;
      pay._pending[id] = resolve;
      field.iframe.contentWindow.postMessage(
        {type: "sandbox:tokenise", id: id, billing_details: (options && options.billing_details) || {}}, ORIGIN);
    });
  };
  window.SandboxPay = SandboxPay;
})();
"""

CARD_FIELD_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Card details</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; }
  label { display: block; font-size: .9rem; margin: .25rem 0 .15rem; }
  input { width: 100%; font: inherit; padding: .55rem .6rem; border: 1px solid #8a93a3; border-radius: .35rem; }
  input:focus { outline: 3px solid #f0b429; outline-offset: 1px; }
  input[aria-invalid="true"] { border-color: #b3261e; }
  .row { display: flex; gap: .75rem; }
  .row > div { flex: 1; }
  #error { color: #b3261e; min-height: 1.3rem; margin: .3rem 0 0; font-size: .9rem; }
</style>
</head>
<body>
<form id="card" novalidate autocomplete="on" onsubmit="return false">
  <label for="number">Card number</label>
  <input id="number" name="cardnumber" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234"
         maxlength="23" aria-describedby="error" spellcheck="false">
  <div class="row">
    <div><label for="expiry">Expiry (MM / YY)</label>
      <input id="expiry" name="exp-date" inputmode="numeric" autocomplete="cc-exp" placeholder="MM / YY" maxlength="7"
             aria-describedby="error"></div>
    <div><label for="cvc">Security code</label>
      <input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" maxlength="4"
             aria-describedby="error"></div>
  </div>
  <p id="error" role="alert" aria-live="polite"></p>
</form>
<script>
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var key = params.get("key") || "";
  var parentOrigin = params.get("origin") || "";
  var number = document.getElementById("number");
  var expiry = document.getElementById("expiry");
  var cvc = document.getElementById("cvc");
  var error = document.getElementById("error");

  function post(msg) { if (parentOrigin) { window.parent.postMessage(msg, parentOrigin); } }
  function digits(value) { return value.replace(/\D/g, ""); }
  function luhn(value) {
    var sum = 0;
    for (var i = 0; i < value.length; i++) {
      var d = +value[value.length - 1 - i];
      if (i % 2) { d = d * 2; if (d > 9) { d -= 9; } }
      sum += d;
    }
    return value.length >= 12 && sum % 10 === 0;
  }
  function expiryParts() {
    var d = digits(expiry.value);
    return {month: d.slice(0, 2), year: d.slice(2, 4)};
  }
  function problem() {
    var n = digits(number.value), e = expiryParts(), c = digits(cvc.value);
    if (n.length && (n.length >= 12 && !luhn(n))) { return {field: number, message: "Your card number is incorrect."}; }
    if (e.month.length === 2 && (+e.month < 1 || +e.month > 12)) {
      return {field: expiry, message: "Your card's expiration month is invalid."};
    }
    return null;
  }
  function complete() {
    var e = expiryParts();
    return luhn(digits(number.value)) && e.month.length === 2 && e.year.length === 2 && digits(cvc.value).length >= 3;
  }
  function show(found) {
    [number, expiry, cvc].forEach(function (input) { input.removeAttribute("aria-invalid"); });
    error.textContent = found ? found.message : "";
    if (found && found.field) { found.field.setAttribute("aria-invalid", "true"); }
  }
  function changed() {
    var found = problem();
    show(found);
    post({type: "sandbox:change", detail: {complete: complete(), empty: !number.value && !expiry.value && !cvc.value,
                                           error: found ? {message: found.message} : null}});
  }
  number.addEventListener("input", function () {
    var d = digits(number.value).slice(0, 19);
    number.value = d.replace(/(\d{4})(?=\d)/g, "$1 ");
    changed();
  });
  expiry.addEventListener("input", function () {
    var d = digits(expiry.value).slice(0, 4);
    expiry.value = d.length > 2 ? d.slice(0, 2) + " / " + d.slice(2) : d;
    changed();
  });
  cvc.addEventListener("input", function () { cvc.value = digits(cvc.value).slice(0, 4); changed(); });

  function tokenise(msg) {
    var e = expiryParts();
    var body = new URLSearchParams();
    body.set("type", "card");
    body.set("card[number]", digits(number.value));
    body.set("card[exp_month]", e.month);
    body.set("card[exp_year]", e.year);
    body.set("card[cvc]", digits(cvc.value));
    var billing = msg.billing_details || {};
    ["name", "email"].forEach(function (k) { if (billing[k]) { body.set("billing_details[" + k + "]", billing[k]); } });
    fetch("/v1/payment_methods", {method: "POST", body: body.toString(), credentials: "omit",
                                  headers: {"Authorization": "Bearer " + key,
                                            "Content-Type": "application/x-www-form-urlencoded"}})
      .then(function (response) {
        return response.json().then(function (json) { return {ok: response.ok, json: json}; });
      })
      .then(function (answer) {
        if (answer.ok) {
          var card = answer.json.card || {};
          post({type: "sandbox:result", id: msg.id,
                paymentMethod: {id: answer.json.id, type: "card", card: {brand: card.brand, last4: card.last4}}});
          return;
        }
        var err = answer.json.error || {};
        var field = {number: number, exp_month: expiry, exp_year: expiry, cvc: cvc}[err.param] || null;
        show({field: field, message: err.message || "Your card could not be used."});
        post({type: "sandbox:result", id: msg.id,
              error: {type: err.type || "card_error", code: err.code || "", decline_code: err.decline_code || "",
                      message: err.message || "Your card could not be used."}});
      })
      .catch(function () {
        post({type: "sandbox:result", id: msg.id,
              error: {type: "api_connection_error", message: "The payment provider could not be reached. Try again."}});
      });
  }

  window.addEventListener("message", function (event) {
    if (!parentOrigin || event.origin !== parentOrigin || event.source !== window.parent) { return; }
    var msg = event.data || {};
    if (msg.type === "sandbox:tokenise") { tokenise(msg); }
    else if (msg.type === "sandbox:focus") { number.focus(); }
  });
  post({type: "sandbox:ready"});
})();
</script>
</body>
</html>
"""

_ASSETS = {
    "/js/v1/sandbox.js": (LIBRARY_JS, "application/javascript; charset=utf-8"),
    "/elements/card": (CARD_FIELD_HTML, "text/html; charset=utf-8"),
}


def asset(path: str) -> tuple[str, str] | None:
    """``(body, content type)`` of the library or the card field served at ``path``, or None."""
    return _ASSETS.get(path)
