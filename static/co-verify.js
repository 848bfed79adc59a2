// Embedded login's fallback (auth0-js crossOriginVerification): the
// application's page, framed here, holds the verifier auth0-js stored when
// /co/authenticate answered. Ask it once it is ready, post the answer to
// /co/verify. An empty answer is posted too: Sesame then tells the
// application why the sign-in failed.
(function () {
  'use strict';
  var form = document.getElementById('co-verify');
  var frame = document.getElementById('co-frame');
  var origin = form.getAttribute('data-frame-origin');
  var id = form.getAttribute('data-co-id');
  var done = false;
  function send(verifier) {
    if (done) return;
    done = true;
    form.elements.verifier.value = verifier || '';
    form.submit();
  }
  window.addEventListener('message', function (e) {
    if (e.origin !== origin || e.source !== frame.contentWindow || !e.data) return;
    if (e.data.type === 'ready') {
      frame.contentWindow.postMessage({ type: 'co_verifier_request', request: { id: id } }, origin);
    } else if (e.data.type === 'co_verifier_response') {
      send(e.data.response && e.data.response.verifier);
    }
  });
  setTimeout(function () {
    if (!done) {
      document.getElementById('co-status').textContent =
        'The application did not answer. Go back to it and sign in again.';
      send('');
    }
  }, 10000);
})();
