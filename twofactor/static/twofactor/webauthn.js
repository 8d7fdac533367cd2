// Passkeys and security keys: the browser's half of twofactor's WebAuthn ceremonies.
//
// A form marked data-webauthn="register" | "authenticate" | "sign-in" carries its options
// (data-webauthn-options, the JSON the server made) or where to fetch them
// (data-webauthn-options-url). Its [data-webauthn-start] button asks the authenticator;
// the answer goes into the form's hidden "credential" field and the form is submitted
// as usual (htmx inside a dialog, a plain post otherwise). Without WebAuthn, or without
// this script, the button stays hidden and [data-webauthn-unavailable] says what to do.
(function () {
  "use strict";

  var supported = Boolean(
    window.PublicKeyCredential &&
    PublicKeyCredential.parseCreationOptionsFromJSON &&
    PublicKeyCredential.parseRequestOptionsFromJSON &&
    navigator.credentials
  );

  // The page's language, from Django's JavaScript catalog where the page loads it before
  // this script; without it, the English as written here.
  var gettext = window.gettext || function (text) { return text; };

  // NotAllowedError is the browser's one answer for "cancelled", "timed out" and "no
  // key of this site here" (it says no more, so a site cannot probe for keys): each
  // ceremony says what that means for it and what to do instead.
  var NOT_ALLOWED = {
    register: gettext("Nothing was saved or sent: the request was cancelled or timed out. Try again when you are ready."),
    authenticate: gettext("No passkey or security key was used: the request was cancelled or timed out, or this key is not registered to your account. Try again, or enter a code instead."),
    "sign-in": gettext("No passkey was used: the request was cancelled or timed out, or this device has no passkey for this site. Try again, or log in with your email and password.")
  };
  var MESSAGES = {
    InvalidStateError: gettext("This passkey or security key is already registered to your account."),
    SecurityError: gettext("Passkeys cannot be used at this web address. Open the portal at its usual address and try again."),
    AbortError: ""
  };
  var FALLBACK = gettext("Your browser could not use a passkey or security key here. Try again, or use another way.");

  // Passkey autofill on the login page waits in the background; the button's own
  // request must cancel it first (a browser runs one WebAuthn request at a time).
  var autofill = null;
  var AUTOFILL_RENEW_MS = 4 * 60 * 1000;
  // Once the button is pressed, autofill does not start (or go on) behind it: a browser
  // that finds a conditional request waiting refuses the button's own.
  var pressed = false;

  // Where WebAuthn works: the key buttons and what speaks of them ([data-webauthn-available])
  // show, the "needs a browser with passkey support" notes go, and a button that was the
  // primary way on without a key ([data-webauthn-demote]) yields that place to the key's.
  function prepare(root) {
    if (!supported) { return; }
    root = root || document;
    root.querySelectorAll("form[data-webauthn]").forEach(function (form) {
      form.querySelectorAll("[data-webauthn-start]").forEach(function (b) { b.hidden = false; });
      form.querySelectorAll("[data-webauthn-unavailable]").forEach(function (p) { p.hidden = true; });
    });
    root.querySelectorAll("[data-webauthn-available]").forEach(function (e) { e.hidden = false; });
    root.querySelectorAll("[data-webauthn-demote]").forEach(function (b) { b.classList.remove("button-primary"); });
  }

  function say(form, text) {
    var box = form.querySelector("[data-webauthn-status]");
    if (!box) { return; }
    box.textContent = "";
    if (text) {
      var p = document.createElement("p");
      p.textContent = text;
      box.appendChild(p);
    }
    box.hidden = !text;
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function options(form) {
    if (form.dataset.webauthnOptions) {
      return Promise.resolve(JSON.parse(form.dataset.webauthnOptions));
    }
    return fetch(form.dataset.webauthnOptionsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form) }
    }).then(function (response) {
      if (!response.ok) { throw new Error("options " + response.status); }
      return response.json();
    });
  }

  function ask(form, json, mediation, signal) {
    if (form.dataset.webauthn === "register") {
      return navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json)
      });
    }
    var request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(json) };
    if (mediation) { request.mediation = mediation; }
    if (signal) { request.signal = signal; }
    return navigator.credentials.get(request);
  }

  function send(form, credential) {
    form.querySelector("input[name=credential]").value = JSON.stringify(credential.toJSON());
    // The code step's "Don't ask for a code on this browser" box lives in the code form.
    var copy = form.querySelector("[data-remember-copy]");
    var box = document.querySelector("[data-remember-browser]");
    if (copy && box) { copy.value = box.checked ? "1" : ""; }
    if (form.dataset.webauthn === "register") { reloadWhenClosed(form.closest("dialog")); }
    form.requestSubmit();
  }

  // A key added inside a dialog: My profile behind it still lists the keys as they were.
  // However the dialog then closes ("Keep this name", the close button, Escape), the
  // page is loaded again, as "Save" does, so the new key is there. Not after a refusal:
  // the dialog then still holds the form to try again, and nothing changed.
  function reloadWhenClosed(dialog) {
    if (!dialog || dialog.dataset.webauthnReload) { return; }
    dialog.dataset.webauthnReload = "1";
    dialog.addEventListener("close", function () {
      if (!dialog.querySelector('form[data-webauthn="register"]')) { window.location.reload(); }
    });
  }

  function failed(form, button, error) {
    // Usable again, and where the focus was: a disabled button had dropped it to the page.
    if (button) { button.disabled = false; button.classList.remove("is-busy"); button.focus(); }
    var text = FALLBACK;
    if (error && error.name === "NotAllowedError") {
      text = NOT_ALLOWED[form.dataset.webauthn] || FALLBACK;
    } else if (error && Object.prototype.hasOwnProperty.call(MESSAGES, error.name)) {
      text = MESSAGES[error.name];
    }
    say(form, text);
  }

  function start(form, button) {
    pressed = true;
    if (autofill) { autofill.abort(); autofill = null; }
    say(form, "");
    button.disabled = true;
    button.classList.add("is-busy");
    options(form)
      .then(function (json) { return ask(form, json); })
      .then(function (credential) {
        if (!credential) { throw new DOMException("", "NotAllowedError"); }
        send(form, credential);
      })
      .catch(function (error) { failed(form, button, error); });
  }

  function startAutofill() {
    var form = document.querySelector('form[data-webauthn="sign-in"]');
    if (!form || !document.querySelector('input[autocomplete~="webauthn"]') ||
        !PublicKeyCredential.isConditionalMediationAvailable) { return; }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || pressed) { return; }
      var controller = new AbortController();
      autofill = controller;
      // A challenge lasts 5 minutes: before it runs out, autofill starts again with a
      // new one, so a passkey picked from the box on a page left open still signs in.
      window.setTimeout(function () {
        if (autofill === controller && !pressed) {
          autofill = null;
          controller.abort();
          startAutofill();
        }
      }, AUTOFILL_RENEW_MS);
      return options(form)
        .then(function (json) {
          if (autofill !== controller) { throw new DOMException("", "AbortError"); }
          return ask(form, json, "conditional", controller.signal);
        })
        .then(function (credential) {
          if (credential && autofill === controller) { send(form, credential); }
        });
    }).catch(function () { /* autofill is a convenience: the button and the password stay */ });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-webauthn-start]");
    if (!button || !supported) { return; }
    event.preventDefault();
    start(button.form, button);
  });

  document.addEventListener("DOMContentLoaded", function () {
    prepare(document);
    if (supported) { startAutofill(); }
  });
  // Dialogs arrive by htmx: their buttons are prepared as they settle.
  document.addEventListener("htmx:afterSettle", function () { prepare(document); });
  // Back to the page from the next one (bfcache): the button is usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("[data-webauthn-start].is-busy").forEach(function (button) {
      button.disabled = false;
      button.classList.remove("is-busy");
    });
  });
}());
