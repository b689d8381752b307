// Small enhancements for Shiplog's pages; every page works without them.
"use strict";

document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) return;
  const text = source.value !== undefined ? source.value : source.textContent;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text.trim()).then(function () {
      button.textContent = "Copied";
    });
  } else if (source.select) {
    source.select();
  }
});

// After a form is answered in place, move focus to what it said, so it is read out.
document.addEventListener("htmx:afterSettle", function (event) {
  if (!event.detail.requestConfig || event.detail.requestConfig.verb === "get") return;
  const messages = document.querySelector("#main .messages");
  if (messages && messages.textContent.trim()) {
    messages.focus();
  }
});
