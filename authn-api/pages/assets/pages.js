// assent's hosted sign-in pages: while a page waits (data-poll), long poll the flow's
// Authentication API and reload the page when its status (or QR code) changes. Without
// this script the page still works: it offers a link to refresh by hand.
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
