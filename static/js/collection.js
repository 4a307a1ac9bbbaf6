// The collection after a card payment: wait for the webhook to complete the purchase.
// The page only says "Bought" once the server says completed, and only says it failed
// when the server says it can no longer complete (a decline is shown by the card form).
(function () {
  "use strict";
  const notice = document.getElementById("confirming");
  if (!notice || notice.dataset.state !== "waiting") return;
  const id = notice.dataset.purchaseId;
  // Stripe's redirect after a payment method that failed on its own page.
  if (new URLSearchParams(location.search).get("redirect_status") === "failed") {
    notice.className = "notice notice-error";
    notice.textContent = "The payment did not go through. Nothing was charged; you can try again.";
    return;
  }

  function show(kind, html) {
    notice.className = "notice" + (kind ? " notice-" + kind : "");
    notice.innerHTML = html;
  }

  async function follow() {
    for (let attempt = 0; attempt < 90; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, attempt < 15 ? 1000 : 3000));
      let body;
      try {
        const response = await fetch(`/api/purchases/${id}`, { credentials: "same-origin" });
        if (!response.ok) continue;
        body = await response.json();
      } catch (err) {
        continue; // offline for a moment: keep waiting
      }
      if (body.status === "completed") {
        // The list below comes from the server: reload it with the new track in it.
        window.location.replace(`/collection/?purchase=${id}`);
        return;
      }
      if (body.status === "canceled") {
        show("error", "The payment was canceled. Nothing was charged.");
        return;
      }
      if (body.status === "failed" && body.flag) {
        show("error", "We could not confirm this payment. Our team has been told and will sort it out.");
        return;
      }
    }
    show("", "Your payment is still being confirmed. The track will be in your collection as soon as it is.");
  }

  follow();
})();
