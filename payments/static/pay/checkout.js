/* The hosted payment page: the card is typed into the PSP's own field (an iframe on its origin) and
   tokenised there; this page only ever holds the pm_ token. Then it confirms the session, follows the
   payment's progress, sends the buyer through 3-D Secure when their bank asks, and lands on the
   outcome. Reloading the page (or coming back to it) mid-payment resumes following; it never pays twice. */
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) { return; }
  var button = document.getElementById("pay-button");
  var statusLine = document.getElementById("pay-status");
  var cardPanel = document.getElementById("card-panel");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var pollDelay = 300;
  var following = false;

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "status" + (kind ? " " + kind : "");
  }

  function showOrders(orders) {
    (orders || []).forEach(function (order) {
      var section = document.querySelector('[data-seller="' + order.seller_id + '"] .order-state');
      if (section && section.textContent !== order.state_label) {
        section.textContent = order.state_label;
        section.setAttribute("data-state", order.state);
      }
    });
  }

  function follow(answer) {
    showOrders(answer.orders);
    if (answer.redirect) { window.location.assign(answer.redirect); return; }
    if (answer.next_action_url) {
      say("Your bank asks you to confirm this payment. Taking you there…");
      window.location.assign(answer.next_action_url);
      return;
    }
    if (answer.status === "expired") { say(answer.message, "error"); return; }
    say(answer.message || "Your payment is in progress…");
    window.setTimeout(poll, pollDelay);
  }

  function poll() {
    fetch(form.getAttribute("data-status-url"), {headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function (response) { return response.json(); })
      .then(follow)
      .catch(function () { say("Connection lost; still trying…"); window.setTimeout(poll, 1000); });
  }

  function startFollowing() {
    if (following) { return; }
    following = true;
    cardPanel.hidden = true;
    poll();
  }

  if (form.getAttribute("data-started") === "true") { startFollowing(); return; }
  if (typeof window.SandboxPay !== "function") {
    say("The secure card field could not be loaded. Check your connection and reload the page.", "error");
    return;
  }

  var pay = window.SandboxPay(form.getAttribute("data-publishable-key"));
  var card = pay.elements().create("card", {title: "Card details (secure field of our payment provider)"});
  card.mount("#card-field");
  var complete = false;
  card.on("change", function (detail) {
    complete = !!detail.complete;
    button.disabled = !complete;
    if (detail.error) { say(detail.error.message, "error"); } else if (!following) { say(""); }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!complete || following || button.disabled) { return; }
    button.disabled = true;
    say("Checking your card…");
    pay.createPaymentMethod({type: "card", card: card}).then(function (result) {
      if (result.error) {
        say(result.error.message, "error");
        button.disabled = false;
        return;
      }
      say("Paying…");
      return fetch(form.getAttribute("data-confirm-url"), {
        method: "POST", cache: "no-store",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({payment_method: result.paymentMethod.id})
      }).then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) {
            say((answer.error && answer.error.message) || "The payment could not be started.", "error");
            button.disabled = false;
            return;
          }
          following = true;
          cardPanel.hidden = true;
          follow(answer);
        });
      });
    }).catch(function () {
      say("The payment could not be started. Check your connection and try again.", "error");
      button.disabled = false;
    });
  });
})();
