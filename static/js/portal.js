// A little progressive enhancement: htmx dialogs, copy and print buttons.
// Everything here is optional: every page works without JavaScript.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var opener = null;

  function openDialogs(root) {
    var dialogs = (root || document).querySelectorAll("dialog.modal:not([open])");
    dialogs.forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        dialog.remove();
        if (opener && document.contains(opener)) { opener.focus(); }
      });
      dialog.showModal();
      var focusTarget = dialog.querySelector("[autofocus]") || dialog.querySelector("h1");
      if (focusTarget) {
        if (!focusTarget.hasAttribute("tabindex") && focusTarget.tagName === "H1") {
          focusTarget.setAttribute("tabindex", "-1");
        }
        focusTarget.focus();
      }
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var trigger = event.detail.elt;
    if (trigger && trigger.closest && !trigger.closest("dialog")) { opener = trigger; }
  });
  document.addEventListener("htmx:afterSettle", function (event) { openDialogs(event.target); });

  function mustConfirmFirst(dialog) {
    var card = dialog && dialog.querySelector("[data-requires-confirmation]");
    var box = card && card.querySelector("input[name=stored]");
    if (box && !box.checked) {
      var status = dialog.querySelector("[role=status]");
      if (status) { status.textContent = "Tick \u201cI have stored these codes\u201d before closing."; }
      box.focus();
      return true;
    }
    return false;
  }

  document.addEventListener("click", function (event) {
    var closeButton = event.target.closest(".modal-close");
    if (closeButton && mustConfirmFirst(closeButton.closest("dialog"))) {
      event.preventDefault();
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) {
      event.preventDefault();
      closer.closest("dialog").close();
      return;
    }
    var copy = event.target.closest("[data-copy-target]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy-target"));
      var text = source.tagName === "UL"
        ? Array.prototype.map.call(source.querySelectorAll("li"), function (li) { return li.textContent.trim(); }).join("\n")
        : source.textContent.replace(/\s+/g, "");
      var status = copy.closest("dialog, main").querySelector("[role=status]");
      var done = function () { if (status) { status.textContent = "Copied to the clipboard."; } copy.textContent = "Copied"; };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }
      return;
    }
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  // Escape closes a dialog, except the backup codes before they are confirmed stored.
  document.addEventListener("cancel", function (event) {
    if (mustConfirmFirst(event.target)) { event.preventDefault(); }
  }, true);
})();
