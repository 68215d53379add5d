// assent's hosted sign-in pages: while a page waits (data-poll), long poll the flow's
// Authentication API and reload the page when its status (or QR code) changes. Without
// this script the page still works: it offers a link to refresh by hand. A WebAuthn page
// runs its ceremony (the second part below).
(function () {
  'use strict';
  var main = document.querySelector('main[data-poll="true"]');
  if (!main || !window.fetch) {
    return;
  }
  var status = main.getAttribute('data-status');
  // A QR page also changes when a new code replaces the one shown or a phone scans it
  // (empty code), while the status stays the same.
  var code = main.getAttribute('data-code');
  var url = '/pf-ws/authn/flows/' + encodeURIComponent(main.getAttribute('data-flow')) +
    '?action=poll&wait=25';
  var failures = 0;
  function poll() {
    fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-XSRF-Header': 'assent-pages' },
      body: '{}'
    }).then(function (response) {
      if (!response.ok) {
        throw new Error('poll answered ' + response.status);
      }
      return response.json();
    }).then(function (state) {
      failures = 0;
      if (state.status !== status || (code !== null && (state.code || '') !== code)) {
        window.location.reload();
      } else {
        poll();
      }
    }).catch(function () {
      // Back off, up to 30 s, so a service restart is not met by a storm of polls.
      failures += 1;
      window.setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
    });
  }
  poll();
}());

// A WebAuthn page (form#webauthn): runs navigator.credentials.create (set up) or get
// (sign in) with the page's options and posts the answer with the page's form, as
// PingFederate's widget does: binary fields of the options arrive as arrays of byte
// numbers, the answer's go back in padded standard base64. It starts as the page loads
// (browsers that want a click first refuse, and the button is there), and again from the
// button after a refusal. Without this script the page says that the step needs it.
(function () {
  'use strict';
  var form = document.getElementById('webauthn');
  if (!form) {
    return;
  }
  var ceremony = form.getAttribute('data-ceremony');
  var button = document.getElementById('webauthn-start');
  var status = document.getElementById('webauthn-status');
  function say(name, error) {
    var message = document.querySelector('#webauthn-messages [data-message="' + name + '"]');
    status.textContent = message ? message.textContent : '';
    status.className = error ? 'error' : 'waiting';
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    say('unsupported', true);
    return;
  }
  function bytes(numbers) {
    return new Uint8Array(numbers);
  }
  function base64(buffer) {
    var array = new Uint8Array(buffer || []);
    var text = '';
    for (var i = 0; i < array.length; i += 1) {
      text += String.fromCharCode(array[i]);
    }
    return window.btoa(text);
  }
  function credentials(list) {
    return list.map(function (credential) {
      var described = { type: credential.type, id: bytes(credential.id) };
      if (credential.transports) {
        described.transports = credential.transports;
      }
      return described;
    });
  }
  function copy(from, to, names) {
    names.forEach(function (name) {
      if (name in from) {
        to[name] = from[name];
      }
    });
  }
  function creationOptions(options) {
    var publicKey = {
      rp: options.rp,
      user: options.user,
      challenge: bytes(options.challenge),
      pubKeyCredParams: options.pubKeyCredParams
    };
    publicKey.user.id = bytes(options.user.id);
    copy(options, publicKey, ['timeout', 'authenticatorSelection', 'attestation', 'extensions']);
    if ('excludeCredentials' in options) {
      publicKey.excludeCredentials = credentials(options.excludeCredentials);
    }
    return publicKey;
  }
  function requestOptions(options) {
    var publicKey = { challenge: bytes(options.challenge) };
    if ('allowCredentials' in options) {
      publicKey.allowCredentials = credentials(options.allowCredentials);
    }
    copy(options, publicKey, ['rpId', 'timeout', 'userVerification']);
    return publicKey;
  }
  // FULL with a platform authenticator that verifies the person, else SECURITY_KEY_ONLY;
  // a browser that does not say within a second has none (the widget's rule).
  function compatibility() {
    var check = PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable
      ? PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable()
        .catch(function () { return false; })
      : Promise.resolve(false);
    var late = new Promise(function (resolve) {
      window.setTimeout(function () { resolve(false); }, 1000);
    });
    return Promise.race([check, late]).then(function (available) {
      return available ? 'FULL' : 'SECURITY_KEY_ONLY';
    });
  }
  function answer(credential) {
    var response = credential.response;
    var answered = { id: credential.id, rawId: base64(credential.rawId), type: credential.type };
    answered.response = ceremony === 'create' ? {
      clientDataJSON: base64(response.clientDataJSON),
      attestationObject: base64(response.attestationObject)
    } : {
      clientDataJSON: base64(response.clientDataJSON),
      authenticatorData: base64(response.authenticatorData),
      signature: base64(response.signature),
      userHandle: base64(response.userHandle)
    };
    return JSON.stringify(answered);
  }
  var running = false;
  function refused(error) {
    running = false;
    var name = error && error.name;
    if (name === 'NotAllowedError' || name === 'AbortError') {
      say('canceled', true);
    } else if (name === 'InvalidStateError' && ceremony === 'create') {
      say('already', true);
    } else {
      say('failed', true);
    }
    button.textContent = button.getAttribute('data-retry');
    button.hidden = false;
    button.focus();
  }
  function run() {
    if (running) {
      return;
    }
    running = true;
    button.hidden = true;
    say('working', false);
    var call;
    try {
      var options = JSON.parse(form.getAttribute('data-options'));
      call = ceremony === 'create'
        ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
    } catch (error) {
      refused(error);
      return;
    }
    call.then(function (credential) {
      form.querySelector('[data-answer]').value = answer(credential);
      form.querySelector('[data-origin]').value = window.location.origin;
      var field = form.querySelector('[data-compatibility]');
      return (field ? compatibility() : Promise.resolve(null)).then(function (supported) {
        if (field) {
          field.value = supported;
        }
        form.submit();
      });
    }).catch(refused);
  }
  button.addEventListener('click', run);
  if (form.getAttribute('data-autostart') === 'true') {
    run();
  } else {
    button.hidden = false;
  }
}());
