// The studio: request a generation, then follow every unfinished track's progress.
(function () {
  "use strict";
  const form = document.getElementById("generate-form");
  const status = document.getElementById("generate-status");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      data.duration_seconds = parseInt(data.duration_seconds || "60", 10);
      const button = form.querySelector("button");
      button.disabled = true;
      status.textContent = "Starting…";
      try {
        const response = await fetch("/api/tracks/generate", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify(data),
        });
        const body = await response.json();
        if (response.status === 202) {
          window.location.reload();
          return;
        }
        status.innerHTML = "";
        status.className = "error";
        status.append(body.message || "Something went wrong.");
        if (body.buy_url) {
          const link = document.createElement("a");
          link.href = body.buy_url;
          link.textContent = " Buy credits";
          status.append(link);
        }
      } catch (err) {
        status.textContent = "Could not reach the server. Nothing was charged.";
      }
      button.disabled = false;
    });
  }

  // Forms that ask first (delete): a listener, as the CSP refuses inline handlers.
  document.querySelectorAll("form[data-confirm]").forEach((confirmed) => {
    confirmed.addEventListener("submit", (event) => {
      if (!window.confirm(confirmed.dataset.confirm)) event.preventDefault();
    });
  });

  // Progress bars start at the server's figure (set here: style attributes are refused).
  document.querySelectorAll(".progress-bar[data-progress]").forEach((bar) => {
    bar.style.width = `${bar.dataset.progress}%`;
  });

  document.querySelectorAll('.studio-track[data-status="queued"], .studio-track[data-status="generating"]')
    .forEach((row) => follow(row));

  async function follow(row) {
    const bar = row.querySelector(".progress-bar");
    const badge = row.querySelector(".badge");
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const response = await fetch(`/api/tracks/${row.dataset.trackId}`, { credentials: "same-origin" });
      if (!response.ok) continue;
      const track = await response.json();
      if (bar) {
        bar.style.width = `${track.progress}%`;
        bar.parentElement.setAttribute("aria-valuenow", track.progress);
      }
      if (badge) badge.textContent = track.status === "generating" ? `Generating ${track.progress}%` : track.status;
      if (track.status === "ready" || track.status === "failed") {
        window.location.reload();
        return;
      }
    }
  }
})();
