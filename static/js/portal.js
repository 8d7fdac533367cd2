// A little progressive enhancement: htmx dialogs, copy and print buttons.
// Everything here is optional: every page works without JavaScript.
(function () {
  "use strict";
  // Django's JavaScript catalog (loaded before this script) translates; without it, English.
  var gettext = window.gettext || function (s) { return s; };
  document.documentElement.classList.add("js");

  // A page that answers a form post (a refused code, a wrong password): its history entry
  // becomes the plain address, so Back and Reload open the page afresh rather than Chrome's
  // "Confirm Form Resubmission", and nothing is posted twice.
  if (document.body.hasAttribute("data-post-result")) {
    window.history.replaceState(window.history.state, "", window.location.href);
  }

  var opener = null;

  function openDialogs(root) {
    var dialogs = (root || document).querySelectorAll("dialog.modal:not([open])");
    dialogs.forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        // Closed after new codes were shown: the page behind (the count, the activity)
        // is out of date, so it is loaded again, as Done would.
        if (dialog.querySelector("[data-requires-confirmation]")) { window.location.reload(); return; }
        dialog.remove();
        if (opener && document.contains(opener)) { opener.focus(); }
      });
      dialog.showModal();
      dialog.scrollTop = 0;  // title and close button in view, even on a phone
      var focusTarget = dialog.querySelector("[autofocus]") || dialog.querySelector("h1");
      if (focusTarget) {
        if (!focusTarget.hasAttribute("tabindex") && focusTarget.tagName === "H1") {
          focusTarget.setAttribute("tabindex", "-1");
        }
        focusTarget.focus();
      }
    });
  }

  // Working: the pressed button is disabled and busy until the answer is in, and
  // the old error messages go (they were about what was typed before). One click,
  // one request: a second click lands on a disabled button.
  function setBusy(form, submitter, busy) {
    form.setAttribute("aria-busy", busy ? "true" : "false");
    if (submitter) {
      submitter.disabled = busy;
      submitter.classList.toggle("is-busy", busy);
    }
  }

  // Set for the pager's First and Last (see the afterSettle listener below).
  var pagerPressed = false;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var trigger = event.detail.elt;
    pagerPressed = Boolean(trigger && trigger.closest && trigger.closest(".pager"));
    if (trigger && trigger.closest && !trigger.closest("dialog")) { opener = trigger; }
    if (trigger && trigger.tagName === "FORM") {
      var submitter = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent &&
        event.detail.requestConfig.triggeringEvent.submitter || trigger.querySelector("[type=submit]");
      trigger._busyButton = submitter;
      setBusy(trigger, submitter, true);
      trigger.querySelectorAll(".field-errors").forEach(function (box) { box.remove(); });
      trigger.querySelectorAll(".field-invalid").forEach(function (f) { f.classList.remove("field-invalid"); });
    }
  });
  // The pager's First and Last links are not on the pages they open, so htmx cannot keep
  // the focus on them: it goes to the count ("101–110 of 110 users") at the top of the
  // list, in view where the new page is shown, instead of the top of the document.
  document.addEventListener("htmx:afterSettle", function () {
    var pressed = pagerPressed;
    pagerPressed = false;  // only for the swap that link asked for
    var count = document.querySelector("#users-region .result-count");
    if (!pressed || !count || (document.activeElement && document.activeElement !== document.body)) { return; }
    count.setAttribute("tabindex", "-1");
    count.focus({preventScroll: true});
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var trigger = event.detail.elt;
    if (trigger && trigger.tagName === "FORM" && document.contains(trigger)) {
      setBusy(trigger, trigger._busyButton, false);
    }
  });

  // Without htmx (a plain form post): the same busy button, and no second submit.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("hx-post") || form.hasAttribute("hx-get") ||
        form.method === "dialog") { return; }
    if (form.dataset.submitting) { event.preventDefault(); return; }
    form.dataset.submitting = "1";
    setBusy(form, event.submitter || form.querySelector("[type=submit]"), true);
  });
  // Back from the next page (bfcache): the form is usable again. A one-time code the
  // browser kept in its field is stale by then (and, refused once, would be refused
  // again and counted): the field starts empty.
  window.addEventListener("pageshow", function (event) {
    var navigation = window.performance && performance.getEntriesByType &&
      performance.getEntriesByType("navigation")[0];
    if (event.persisted || (navigation && navigation.type === "back_forward")) {
      document.querySelectorAll("input[autocomplete=one-time-code]").forEach(function (input) { input.value = ""; });
    }
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      setBusy(form, form.querySelector(".is-busy") || form.querySelector("[type=submit]"), false);
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    openDialogs(event.target);
    // New content inside an open dialog (the codes after "Check"): a screen reader
    // lands on its heading, and the dialog shows its top.
    var dialog = event.target.closest && event.target.closest("dialog[open]");
    if (dialog) {
      // A status line ("Copied to the clipboard.") was about the step before.
      var status = dialog.querySelector(".modal-body > .messages");
      if (status) { status.textContent = ""; status.classList.remove("is-warning"); }
      // A refusal: the message and its field in view. A new step: its top and heading.
      var error = dialog.querySelector(".field-errors, [role=alert]");
      if (error) {
        error.scrollIntoView({block: "center"});
        return;
      }
      var heading = dialog.querySelector("[data-focus-on-swap]");
      if (heading) { heading.focus(); }
      // Whatever the new step is, the focus stays in the dialog (not on the page behind).
      if (!dialog.contains(document.activeElement)) {
        var target = dialog.querySelector("[autofocus]") || dialog.querySelector("h1");
        if (target) {
          if (target.tagName === "H1" && !target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
          target.focus({preventScroll: true});  // the step's top stays in view
        }
      }
      dialog.scrollTop = 0;
    }
  });

  function mustConfirmFirst(dialog) {
    var card = dialog && dialog.querySelector("[data-requires-confirmation]");
    var box = card && card.querySelector("input[name=stored]");
    if (box && !box.checked) {
      var status = dialog.querySelector("[role=status]");
      if (status) {
        status.textContent = gettext("Tick \u201cI have stored these codes\u201d before closing.");
        status.classList.add("is-warning");  // a reminder: warning styling
      }
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
      var done = function () { if (status) { status.textContent = gettext("Copied to the clipboard."); } copy.textContent = gettext("Copied"); };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }
      return;
    }
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  // The language picker changes the language as soon as one is picked; without
  // JavaScript its button does. It returns to the address shown now, which htmx may have
  // changed since the page (and the picker's own "next") was rendered.
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-submit-on-change]")) { event.target.form.requestSubmit(); }
  });
  document.addEventListener("submit", function (event) {
    var next = event.target.matches(".language-picker") && event.target.querySelector("input[name=next]");
    if (next) { next.value = window.location.pathname + window.location.search; }
  }, true);

  // A required field's own words, in the page's language (the browser would use its own).
  document.addEventListener("invalid", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-required-message");
    if (message) { event.target.setCustomValidity(event.target.validity.valueMissing ? message : ""); }
  }, true);
  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-required-message")) { event.target.setCustomValidity(""); }
  });

  // Escape closes a dialog, except the backup codes before they are confirmed stored.
  document.addEventListener("cancel", function (event) {
    if (mustConfirmFirst(event.target)) { event.preventDefault(); }
  }, true);
})();
