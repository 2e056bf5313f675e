/* Copy buttons: <button data-copy="ELEMENT-ID"> copies that element's text.
   Uses the Clipboard API where the page is a secure context; otherwise (plain http on a LAN) selects the
   text and tries the older copy command, or asks for Ctrl+C. No inline script: CSP script-src 'self'. */
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function say(button, text) {
    if (!button.dataset.label) {
      button.dataset.label = button.textContent;
    }
    button.textContent = text;
    button.classList.add("hub-copied");
    window.clearTimeout(button._hubTimer);
    button._hubTimer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove("hub-copied");
    }, 2500);
  }

  function fallback(button, element) {
    selectText(element);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    say(button, copied ? "Copied" : "Selected: press Ctrl+C");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var element = document.getElementById(button.getAttribute("data-copy"));
    if (!element) {
      return;
    }
    var text = element.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied"); },
        function () { fallback(button, element); }
      );
    } else {
      fallback(button, element);
    }
  });
})();
