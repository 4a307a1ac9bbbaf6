// The studio: request a generation, then follow every unfinished track's progress.
(function () {
  "use strict";
  const form = document.getElementById("generate-form");
  const status = document.getElementById("generate-status");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // Mark the fields the server refused: aria-invalid, the red outline, the message.
  function clearErrors() {
    form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((field) => field.classList.remove("field-error"));
    form.querySelectorAll("p.error").forEach((p) => { p.hidden = true; p.textContent = ""; });
  }

  function showErrors(fields) {
    let first = null;
    for (const [name, message] of Object.entries(fields || {})) {
      const input = form.elements.namedItem(name);
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      input.closest(".field").classList.add("field-error");
      const slot = document.getElementById(`${input.id}-error`);
      if (slot) { slot.textContent = message; slot.hidden = false; }
      first = first || input;
    }
    if (first) first.focus();
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      // A number field reads as blank when what was typed is not a number: say so
      // instead of making a track of the default length.
      if (form.elements.duration_seconds.validity.badInput) {
        clearErrors();
        status.className = "error";
        status.textContent = "Length: Enter a whole number of seconds.";
        showErrors({ duration_seconds: "Enter a whole number of seconds." });
        return;
      }
      // Blank means the default length (the help text says which): let the server decide.
      if (!data.duration_seconds.trim()) delete data.duration_seconds;
      const button = form.querySelector("button");
      button.disabled = true;
      clearErrors();
      status.className = "";
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
        const refused = Object.keys(body.fields || {}).length;
        status.append(refused > 1 ? `Check the ${refused} marked fields.` : body.message || "Something went wrong.");
        showErrors(body.fields);
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
