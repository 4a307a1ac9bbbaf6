// Buy buttons on artist and track pages. Credits complete in place (the button and
// the header balance change without a reload); a card payment goes to the test card
// page, or mounts Stripe's Payment Element, and then to the collection, which waits
// for the webhook ("Confirming your payment...").
(function () {
  "use strict";
  const config = document.getElementById("buy-config");
  if (!config) return;
  let balance = config.dataset.balance === "" ? null : Number(config.dataset.balance);

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function credits(n) {
    return `${n} credit${n === 1 ? "" : "s"}`;
  }

  function dollars(cents) {
    return "$" + (cents / 100).toFixed(2);
  }

  function escapeHtml(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // One status line per button, announced to screen readers.
  function notify(anchor, kind, html) {
    const cell = anchor.closest(".buy-cell") || anchor.parentElement;
    let line = cell.querySelector(".buy-notice");
    if (!line) {
      line = document.createElement("p");
      line.className = "buy-notice";
      line.setAttribute("role", "status");
      line.setAttribute("aria-live", "polite");
      cell.appendChild(line);
    }
    line.className = "buy-notice" + (kind ? " buy-notice-" + kind : "");
    line.innerHTML = html;
  }

  function owned(button) {
    const link = document.createElement("a");
    link.className = "button button-small button-ghost buy-button is-owned";
    link.href = "/collection/";
    link.textContent = "In your collection";
    button.replaceWith(link);
    return link;
  }

  // After a credit purchase the balance is lower: the other buttons say what a press
  // would now do (credits while they cover the price, else the card price).
  function setBalance(value) {
    balance = value;
    document.querySelectorAll(".balance-pill").forEach((pill) => {
      pill.textContent = credits(value);
    });
    document.querySelectorAll("button[data-buy]").forEach((button) => {
      const kind = button.dataset.buy;
      if (kind !== "credits" && kind !== "card") return;
      const price = Number(button.dataset.priceCredits);
      const next = balance !== null && balance >= price ? "credits" : "card";
      button.dataset.buy = next;
      button.textContent =
        next === "credits" ? `Buy for ${credits(price)}` : `Buy for ${dollars(Number(button.dataset.amountCents))}`;
    });
  }

  async function buy(button) {
    if (button.disabled) return;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = button.dataset.buy === "credits" ? "Buying\u2026" : "Starting your payment\u2026";
    let response, body;
    try {
      response = await fetch(`/api/tracks/${button.dataset.trackId}/purchase`, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      body = await response.json();
    } catch (err) {
      button.disabled = false;
      button.textContent = label;
      notify(button, "error", "We could not reach SoundStudio. Nothing was charged; please try again.");
      return;
    }
    if (!response.ok) {
      if (body.error === "already_owned") {
        notify(owned(button), "", "This track is already in your collection.");
        return;
      }
      if (response.status === 401) {
        window.location.href = `/accounts/login/?next=${encodeURIComponent(location.pathname)}`;
        return;
      }
      button.disabled = false;
      button.textContent = label;
      notify(button, "error", escapeHtml(body.message || "Something went wrong. Nothing was charged."));
      return;
    }
    if (body.status === "completed") {
      const link = owned(button);
      setBalance(body.balance);
      notify(link, "success", `Bought. You have ${credits(body.balance)} left. <a href="/collection/">Download it</a>`);
      return;
    }
    if (body.checkout_url) {
      window.location.href = body.checkout_url; // the test card page
      return;
    }
    try {
      await payWithStripe(body);
    } catch (err) {
      notify(button, "error", "The card form could not load. Nothing was charged; please try again.");
    }
    button.disabled = false;
    button.textContent = label;
  }

  function loadStripe() {
    if (window.Stripe) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "https://js.stripe.com/v3/";
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  async function payWithStripe(body) {
    await loadStripe();
    const stripe = window.Stripe(config.dataset.publishableKey);
    const elements = stripe.elements({ clientSecret: body.client_secret });
    const panel = document.getElementById("buy-payment");
    const mount = document.getElementById("buy-payment-element");
    const error = document.getElementById("buy-payment-error");
    const confirm = document.getElementById("buy-payment-confirm");
    mount.innerHTML = "";
    error.textContent = "";
    document.getElementById("buy-payment-summary").textContent = `${dollars(body.amount_cents)}, paid to SoundStudio.`;
    elements.create("payment").mount(mount);
    panel.hidden = false;
    panel.scrollIntoView({ behavior: "smooth" });
    document.getElementById("buy-payment-cancel").onclick = () => {
      panel.hidden = true;
    };
    confirm.onclick = async () => {
      confirm.disabled = true;
      const returnUrl = `${location.origin}/collection/?purchase=${body.purchase_id}`;
      const result = await stripe.confirmPayment({ elements, confirmParams: { return_url: returnUrl } });
      // Only reached when the payment could not be confirmed: Stripe redirects otherwise.
      if (result.error) error.textContent = result.error.message;
      confirm.disabled = false;
    };
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-buy]");
    if (button) buy(button);
  });
})();
