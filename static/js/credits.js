// Buying a credit package: start the payment, send the buyer to the card form,
// then follow the payment until the webhook has granted the credits.
(function () {
  "use strict";
  const section = document.getElementById("packages");
  if (!section) return;
  const notice = document.getElementById("payment-notice");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function show(kind, html) {
    notice.hidden = false;
    notice.className = "notice" + (kind ? " notice-" + kind : "");
    notice.innerHTML = html;
  }

  async function buy(slug, button) {
    button.disabled = true;
    show("", '<span class="spinner"></span> Starting your payment…');
    try {
      const response = await fetch(`/api/credits/packages/${slug}/purchase`, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) {
        const link = body.subscribe_url ? ` <a href="${body.subscribe_url}">Subscribe</a>` : "";
        show("error", `${body.message}${link}`);
        button.disabled = false;
        return;
      }
      if (body.checkout_url) {
        window.location.href = body.checkout_url;
        return;
      }
      await payWithStripe(body);
    } catch (err) {
      show("error", "Something went wrong. Nothing was charged; please try again.");
      button.disabled = false;
    }
  }

  async function payWithStripe(body) {
    const key = section.dataset.publishableKey;
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "https://js.stripe.com/v3/";
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
    const stripe = window.Stripe(key);
    const elements = stripe.elements({ clientSecret: body.client_secret });
    elements.create("payment").mount("#payment-element");
    document.getElementById("payment-element-wrap").hidden = false;
    notice.hidden = true;
    document.getElementById("confirm-payment").onclick = async () => {
      const returnUrl = `${location.origin}/credits/?payment=${body.payment_intent_id}`;
      const result = await stripe.confirmPayment({ elements, confirmParams: { return_url: returnUrl } });
      if (result.error) show("error", result.error.message);
    };
  }

  async function follow(intentId) {
    show("", '<span class="spinner"></span> Confirming your payment…');
    for (let attempt = 0; attempt < 120; attempt++) {
      const response = await fetch(`/api/payments/${encodeURIComponent(intentId)}`, {
        credentials: "same-origin",
      });
      if (response.ok) {
        const body = await response.json();
        if (body.status === "succeeded") {
          show("success", `<strong>${body.credits_added} credits added.</strong> Your balance is ${body.balance}.`);
          const balance = document.getElementById("balance");
          if (balance) balance.textContent = body.balance;
          const pill = document.querySelector(".balance-pill");
          if (pill) pill.textContent = `${body.balance} credit${body.balance === 1 ? "" : "s"}`;
          setTimeout(() => window.location.replace("/credits/"), 2500);
          return;
        }
        if (body.status === "failed" || body.status === "canceled") {
          show("error", `${body.message || "The payment failed."} Nothing was charged.`);
          return;
        }
      }
      await new Promise((r) => setTimeout(r, attempt < 10 ? 1000 : 3000));
    }
    show("", "Your payment is still being confirmed. We will add the credits as soon as it completes.");
  }

  section.querySelectorAll(".buy-package").forEach((button) => {
    button.addEventListener("click", () => buy(button.dataset.slug, button));
  });
  const intentId = new URLSearchParams(location.search).get("payment");
  if (intentId) follow(intentId);
})();
