// Passkeys on Sesame's pages: registering one, using one as a second factor,
// and signing in with one (a button, and the browser's autofill where it
// offers conditional mediation). Every ceremony's state stays on the server;
// this script only carries the options and the authenticator's answer.
"use strict";
(function () {
  if (!window.PublicKeyCredential) return;

  function dec(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - (s.length % 4)) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }
  function enc(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creation(o) {
    var p = Object.assign({}, o.publicKey);
    p.challenge = dec(p.challenge);
    p.user = Object.assign({}, p.user, { id: dec(p.user.id) });
    p.excludeCredentials = (p.excludeCredentials || []).map(function (c) { return Object.assign({}, c, { id: dec(c.id) }); });
    return p;
  }
  function request(o) {
    var p = Object.assign({}, o.publicKey);
    p.challenge = dec(p.challenge);
    p.allowCredentials = (p.allowCredentials || []).map(function (c) { return Object.assign({}, c, { id: dec(c.id) }); });
    return p;
  }
  function registration(c) {
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        attestationObject: enc(c.response.attestationObject),
        clientDataJSON: enc(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined
      }
    };
  }
  function assertion(c) {
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        authenticatorData: enc(c.response.authenticatorData),
        clientDataJSON: enc(c.response.clientDataJSON),
        signature: enc(c.response.signature),
        userHandle: c.response.userHandle ? enc(c.response.userHandle) : null
      }
    };
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error_description || j.error || "The passkey could not be used.");
        return j;
      });
    });
  }
  function show(msg) {
    var e = document.getElementById("passkey-error");
    if (e) { e.textContent = msg; e.hidden = false; }
  }
  function failed(err) {
    if (err && err.name === "AbortError") return;
    var msg = err && err.name === "NotAllowedError"
      ? "The passkey was not used (cancelled, timed out, or not available on this device)."
      : (err && err.message) || "The passkey could not be used.";
    show(msg);
  }

  var pending = null; // the conditional request in flight, if any

  function run(box, mode, conditional) {
    var base = { csrf: box.dataset.csrf, req: box.dataset.req };
    var remember = document.getElementById("remember");
    var name = document.getElementById("passkey-name");
    if (pending) { pending.abort(); pending = null; }
    return post(box.dataset.options, Object.assign({ mode: mode }, base)).then(function (o) {
      if (mode === "register") {
        return navigator.credentials.create({ publicKey: creation(o) }).then(registration);
      }
      var opts = { publicKey: request(o) };
      if (conditional) {
        pending = new AbortController();
        opts.mediation = "conditional";
        opts.signal = pending.signal;
      }
      return navigator.credentials.get(opts).then(assertion);
    }).then(function (credential) {
      return post(box.dataset.finish, Object.assign({
        mode: mode, credential: credential,
        remember: !!(remember && remember.checked),
        name: name ? name.value : ""
      }, base));
    }).then(function (j) { window.location.assign(j.next); });
  }

  document.querySelectorAll("[data-passkey]").forEach(function (box) {
    var mode = box.dataset.passkey;
    var button = box.querySelector("button");
    if (button) button.addEventListener("click", function () { run(box, mode, false).catch(failed); });
    if (mode === "signin" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run(box, mode, true).catch(failed);
      });
    }
  });
})();
