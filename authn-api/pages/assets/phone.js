// assent's demo phone: this tab acts as a paired device. Its P-256 key is made by Web
// Crypto, not extractable, and kept in IndexedDB (so a reload stays paired); it talks to
// the Device API exactly as `assent device` does: a device JWT (ES256, iss = device id,
// one-minute exp, random jti) on every call, and a JWS proof over {authId, decision,
// paramsHash, number} for every answer. Every text it shows comes from the page.
(function () {
  'use strict';
  var DB = 'assent-demo-phone';
  var STORE = 'device';
  var enc = new TextEncoder();
  var byId = function (id) { return document.getElementById(id); };
  var polling = false;
  var shown = {};
  var current = null;

  function say(name) {
    var message = document.querySelector('#phone-messages [data-message="' + name + '"]');
    byId('phone-status').textContent = message ? message.textContent : '';
  }

  function b64url(bytes) {
    var text = '';
    bytes = new Uint8Array(bytes);
    for (var i = 0; i < bytes.length; i += 1) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomId() {
    return b64url(crypto.getRandomValues(new Uint8Array(16)));
  }

  // A compact JWS (ES256): Web Crypto's ECDSA signature is already r || s, as JWS wants.
  function jws(key, header, claims) {
    var input = b64url(enc.encode(JSON.stringify(header))) + '.' +
      b64url(enc.encode(JSON.stringify(claims)));
    return crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, enc.encode(input))
      .then(function (signature) { return input + '.' + b64url(signature); });
  }

  function token(device) {
    var now = Math.floor(Date.now() / 1000);
    return jws(device.key, { alg: 'ES256', typ: 'JWT' },
      { iss: device.deviceId, iat: now, exp: now + 60, jti: randomId() });
  }

  // Code point order, which is the UTF-8 byte order the server sorts keys in.
  function codePointOrder(a, b) {
    var x = Array.from(a);
    var y = Array.from(b);
    for (var i = 0; i < Math.min(x.length, y.length); i += 1) {
      var d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d !== 0) {
        return d;
      }
    }
    return x.length - y.length;
  }

  // base64url(SHA-256(JSON of the parameters, keys sorted, no spaces)), as the server hashes.
  function paramsHash(params) {
    var sorted = {};
    Object.keys(params).sort(codePointOrder).forEach(function (name) {
      sorted[name] = params[name];
    });
    return crypto.subtle.digest('SHA-256', enc.encode(JSON.stringify(sorted))).then(b64url);
  }

  function database() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open(DB, 1);
      open.onupgradeneeded = function () { open.result.createObjectStore(STORE); };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }

  function stored(mode, act) {
    return database().then(function (db) {
      return new Promise(function (resolve, reject) {
        var request = act(db.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
    });
  }

  function call(device, method, path, body) {
    return token(device).then(function (jwt) {
      var headers = { Authorization: 'Device ' + jwt };
      if (body) {
        headers['Content-Type'] = 'application/json';
      }
      return fetch(path, {
        method: method,
        headers: headers,
        credentials: 'omit',
        body: body ? JSON.stringify(body) : undefined
      });
    });
  }

  function showPaired(device) {
    byId('pair').hidden = true;
    byId('paired').hidden = false;
    byId('paired-user').textContent = device.userId;
    byId('paired-device').textContent = device.name + ' (' + device.deviceId + ')';
  }

  function fill(card, request) {
    var field = function (name) { return card.querySelector('[data-field="' + name + '"]'); };
    var when = function (name, present) {
      card.querySelectorAll('[data-when="' + name + '"]').forEach(function (element) {
        element.hidden = !present;
      });
    };
    field('title').textContent = request.title;
    field('body').textContent = request.body;
    field('application').textContent = request.application.name;
    field('clientIp').textContent = request.clientIp || '';
    when('clientIp', Boolean(request.clientIp));
    field('expires').textContent = new Date(request.expiresAt * 1000)
      .toLocaleTimeString(document.documentElement.lang);
    field('adminMessage').textContent = request.adminMessage || '';
    when('adminMessage', Boolean(request.adminMessage));
    var names = Object.keys(request.dynamicParams || {});
    names.forEach(function (name) {
      var term = document.createElement('dt');
      term.textContent = name;
      var value = document.createElement('dd');
      value.textContent = request.dynamicParams[name];
      field('params').append(term, value);
    });
    when('params', names.length > 0);
    var numbers = request.numberChoices || [];
    numbers.forEach(function (number) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'number-choice';
      button.textContent = String(number);
      button.setAttribute('data-number', String(number));
      field('numbers').append(button);
    });
    when('numbers', numbers.length > 0);
    // With number matching, picking the number is the approval.
    card.querySelector('[data-action="approve"]').hidden = numbers.length > 0;
  }

  function answer(device, request, card, decision, number) {
    card.querySelectorAll('button').forEach(function (button) { button.disabled = true; });
    var claims = { authId: request.authId, decision: decision };
    return paramsHash(request.dynamicParams || {}).then(function (hash) {
      claims.paramsHash = hash;
      if (number !== undefined) {
        claims.number = number;
      }
      return jws(device.key, { alg: 'ES256' }, claims);
    }).then(function (proof) {
      return call(device, 'POST', '/device/v1/authentications/' +
        encodeURIComponent(request.authId), { decision: decision, proof: proof });
    }).then(function (response) {
      say(response.ok ? (decision === 'approve' ? 'approved' : 'denied') : 'answer-failed');
    }, function () {
      say('answer-failed');
    }).then(function () {
      card.remove();
      byId('no-requests').hidden = byId('requests').children.length > 0;
    });
  }

  function show(device, requests) {
    var list = byId('requests');
    var live = {};
    requests.filter(function (request) { return !request.silent; }).forEach(function (request) {
      live[request.authId] = true;
      if (shown[request.authId]) {
        return;
      }
      var card = byId('request-template').content.firstElementChild.cloneNode(true);
      card.setAttribute('data-auth-id', request.authId);
      fill(card, request);
      card.addEventListener('click', function (event) {
        var button = event.target.closest('button');
        if (!button || button.disabled) {
          return;
        }
        if (button.hasAttribute('data-number')) {
          answer(device, request, card, 'approve', Number(button.getAttribute('data-number')));
        } else if (button.getAttribute('data-action')) {
          answer(device, request, card, button.getAttribute('data-action'));
        }
      });
      shown[request.authId] = card;
      list.append(card);
    });
    // Requests answered elsewhere or expired leave the list.
    Object.keys(shown).forEach(function (authId) {
      if (!live[authId]) {
        shown[authId].remove();
        delete shown[authId];
      }
    });
    byId('no-requests').hidden = list.children.length > 0;
  }

  function poll(device, failures) {
    if (!polling) {
      return;
    }
    call(device, 'GET', '/device/v1/pending?wait=25').then(function (response) {
      if (!response.ok) {
        throw new Error('pending answered ' + response.status);
      }
      return response.json();
    }).then(function (list) {
      if (failures > 0) {
        say('waiting');
      }
      show(device, list.requests);
      poll(device, 0);
    }).catch(function () {
      // Back off, up to 30 s, so a restarted service is not met by a storm of polls.
      say('offline');
      window.setTimeout(function () { poll(device, failures + 1); },
        Math.min(30000, 1000 * Math.pow(2, failures + 1)));
    });
  }

  function start(device) {
    current = device;
    showPaired(device);
    say('waiting');
    polling = true;
    poll(device, 0);
  }

  function pair(event) {
    event.preventDefault();
    say('pairing');
    var name = byId('device-name').value;
    var keys;
    crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
      .then(function (pair) {
        keys = pair;
        return crypto.subtle.exportKey('jwk', pair.publicKey);
      }).then(function (jwk) {
        return fetch('/device/v1/pairings', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          credentials: 'omit',
          body: JSON.stringify({
            pairingKey: byId('pairing-key').value.trim(),
            publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
            name: name,
            os: 'Web',
            osVersion: '1',
            model: 'assent demo phone'
          })
        });
      }).then(function (response) {
        if (!response.ok) {
          throw new Error('pairing answered ' + response.status);
        }
        return response.json();
      }).then(function (paired) {
        var device = {
          deviceId: paired.deviceId,
          userId: paired.userId,
          name: name,
          key: keys.privateKey
        };
        // The key object itself is stored: the browser keeps it, unreadable by script.
        return stored('readwrite', function (store) { return store.put(device, 'device'); })
          .then(function () { return device; }, function () { return device; });
      }).then(function (device) {
        byId('pairing-key').value = '';
        start(device);
      }).catch(function () {
        say('pair-failed');
      });
  }

  function unpair(device) {
    polling = false;
    call(device, 'DELETE', '/device/v1/devices/' + encodeURIComponent(device.deviceId))
      .catch(function () { return null; })
      .then(function () {
        return stored('readwrite', function (store) { return store.delete('device'); });
      }).catch(function () { return null; }).then(function () {
        window.location.reload();
      });
  }

  if (!window.crypto || !crypto.subtle || !window.indexedDB) {
    say('no-crypto');
    return;
  }
  byId('pair-form').addEventListener('submit', pair);
  byId('unpair').addEventListener('click', function () {
    if (current) {
      unpair(current);
    }
  });
  stored('readonly', function (store) { return store.get('device'); })
    .catch(function () { return null; })
    .then(function (device) {
      if (device && device.key) {
        start(device);
      } else {
        byId('pair').hidden = false;
      }
    });
}());
