/* Passkeys (WebAuthn) on the hub's pages. No inline script (CSP): everything is driven by data
 * attributes, so any page (the account page, the sign-in page, an invitation) can reuse it.
 *
 *   <form data-passkey-register data-options-url="…" data-verify-url="…">        add a passkey
 *   <form data-passkey-sign-in data-options-url="…" data-verify-url="…"
 *         [data-next="…"] [data-conditional]>                                     sign in with one
 *
 * A <button> may carry the same attributes instead of a form. Pressing it (or submitting the form)
 * POSTs to data-options-url and gets the options as JSON, asks the browser, then POSTs
 * {"credential": …, "name": <the form's name field>} (register) or {"credential": …, "next": …}
 * (sign in) to data-verify-url, which answers {"redirect": URL} (followed) or {"error": message}
 * (shown). Any answer carrying "redirect" is followed; one carrying "error" is shown.
 * data-conditional also offers the passkeys in the browser's autofill of an input with
 * autocomplete="username webauthn", where the browser supports it.
 *
 * Messages appear in the element whose id is data-message (or a [data-passkey-message] inside);
 * the server's messages are already in the person's language, and these attributes hold the
 * page's own: data-error-unsupported, data-error-cancelled, data-error-exists, data-error-failed.
 * CSRF: the X-CSRFToken header, from the page's csrfmiddlewaretoken field.
 *
 * <form data-confirm="question"> asks before it is submitted (removing a passkey).
 */
(function () {
  "use strict";

  if (window.hubPasskeys) {
    return; // loaded twice on one page
  }
  window.hubPasskeys = true;

  // --- base64url <-> ArrayBuffer (for browsers without the JSON helpers) -----------------------
  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(value) {
    var text = atob(value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) {
      bytes[i] = text.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      user: Object.assign({}, json.user, { id: fromBase64url(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json, { challenge: fromBase64url(json.challenge) });
    if (json.allowCredentials) {
      options.allowCredentials = descriptors(json.allowCredentials);
    }
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return credential.toJSON();
      } catch (error) {
        // fall through to the hand-made form
      }
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      json.response.userHandle = response.userHandle ? toBase64url(response.userHandle) : null;
    }
    return json;
  }

  // --- talking to the hub --------------------------------------------------------------------
  function csrfToken(element) {
    var field = element.querySelector("[name=csrfmiddlewaretoken]") ||
      document.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  var LEAVING = { leaving: true }; // a redirect is being followed: leave the page as it is

  function go(url) {
    var target = new URL(url, window.location.href);
    var here = window.location;
    if (target.origin === here.origin && target.pathname === here.pathname && target.search === here.search) {
      // Only the #fragment differs (the account page after adding a passkey): assigning it would
      // merely scroll, so load the page again to show what changed.
      if (target.hash !== here.hash) {
        history.replaceState(null, "", target.href);
      }
      here.reload();
      return;
    }
    here.assign(target.href);
  }

  function Refusal(message) {
    this.name = "Refusal";
    this.message = message;
  }

  function post(element, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken(element) },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () {
        return null;
      });
    }).then(function (answer) {
      if (!answer || typeof answer !== "object") {
        throw new Error("not a JSON answer");
      }
      if (answer.unknown_credential && typeof PublicKeyCredential.signalUnknownCredential === "function") {
        PublicKeyCredential.signalUnknownCredential(answer.unknown_credential).catch(function () {});
      }
      if (answer.redirect) {
        go(answer.redirect);
        return LEAVING;
      }
      if (answer.error) {
        throw new Refusal(answer.error);
      }
      return answer;
    });
  }

  // --- what the person sees ------------------------------------------------------------------
  function messageBox(element) {
    return document.getElementById(element.getAttribute("data-message") || "") ||
      element.querySelector("[data-passkey-message]");
  }

  function say(element, message) {
    var box = messageBox(element);
    if (box) {
      box.textContent = message || "";
      box.hidden = !message;
    }
  }

  function messageFor(element, error) {
    var failed = element.getAttribute("data-error-failed") || "";
    if (error instanceof Refusal) {
      return error.message;
    }
    switch (error && error.name) {
      case "NotAllowedError":
      case "AbortError":
        return element.getAttribute("data-error-cancelled") || failed;
      case "InvalidStateError":
        return element.getAttribute("data-error-exists") || failed;
      case "NotSupportedError":
      case "SecurityError":
        return element.getAttribute("data-error-unsupported") || failed;
      default:
        return failed;
    }
  }

  function supported() {
    return Boolean(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
  }

  function buttonOf(element) {
    return element.tagName === "FORM" ? element.querySelector("button[type=submit], button:not([type])") : element;
  }

  // --- the ceremonies ------------------------------------------------------------------------
  function register(element) {
    return post(element, element.getAttribute("data-options-url"), {}).then(function (options) {
      if (options === LEAVING) {
        return LEAVING;
      }
      return navigator.credentials.create({ publicKey: creationOptions(options) });
    }).then(function (credential) {
      if (credential === LEAVING) {
        return LEAVING;
      }
      if (!credential) {
        throw new Error("no credential");
      }
      var nameField = element.tagName === "FORM" ? element.querySelector("[name=name]") : null;
      return post(element, element.getAttribute("data-verify-url"),
        { credential: credentialJSON(credential), name: nameField ? nameField.value : "" });
    });
  }

  var autofill = null; // the AbortController of the pending autofill (conditional) request

  function signIn(element, conditional) {
    var controller = null;
    return post(element, element.getAttribute("data-options-url"), {}).then(function (options) {
      if (options === LEAVING) {
        return LEAVING;
      }
      var request = { publicKey: requestOptions(options) };
      if (conditional) {
        controller = autofill = new AbortController();
        request.mediation = "conditional";
        request.signal = controller.signal;
      }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      if (credential === LEAVING) {
        return LEAVING;
      }
      if (!credential) {
        throw new Error("no credential");
      }
      return post(element, element.getAttribute("data-verify-url"),
        { credential: credentialJSON(credential), next: element.getAttribute("data-next") || "" });
    }).finally(function () {
      if (controller && autofill === controller) {
        autofill = null;
      }
    });
  }

  function startAutofill(element) {
    if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || autofill) {
        return null;
      }
      return signIn(element, true);
    }).catch(function (error) {
      // The autofill stays quiet unless the hub refused a passkey the person picked: it is aborted
      // when the button is pressed, and may end without a choice.
      if (error instanceof Refusal) {
        say(element, error.message);
      }
    });
  }

  function run(element, ceremony) {
    var button = buttonOf(element);
    if (button && button.disabled) {
      return;
    }
    if (!supported()) {
      say(element, element.getAttribute("data-error-unsupported") || element.getAttribute("data-error-failed"));
      return;
    }
    say(element, "");
    if (autofill) {
      autofill.abort(); // one WebAuthn request at a time: the button's wins
      autofill = null;
    }
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    var done = function () {
      if (button) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    };
    ceremony(element, false).then(function (result) {
      if (result !== LEAVING) {
        done();
      }
    }, function (error) {
      done();
      say(element, messageFor(element, error));
      if (ceremony === signIn && element.hasAttribute("data-conditional")) {
        startAutofill(element); // offer the autofill again
      }
    });
  }

  function bind(element, ceremony) {
    element.addEventListener(element.tagName === "FORM" ? "submit" : "click", function (event) {
      event.preventDefault();
      run(element, ceremony);
    });
  }

  document.querySelectorAll("[data-passkey-register]").forEach(function (element) {
    bind(element, register);
  });
  document.querySelectorAll("[data-passkey-sign-in]").forEach(function (element) {
    bind(element, signIn);
    if (element.hasAttribute("data-conditional")) {
      startAutofill(element);
    }
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
}());
