'use strict';
document.getElementById('login').addEventListener('submit', function (e) {
  e.preventDefault();
  var out = document.getElementById('login-error');
  out.textContent = '';
  var token = document.getElementById('token').value;
  fetch('/dashboard/login', {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({token: token})
  }).then(function (r) {
    if (r.status === 204) { location.replace('/dashboard/'); return; }
    out.textContent = r.status === 401 ? 'Wrong token.' : r.status === 429 ? 'Too many failed attempts; wait a minute.' : 'Sign-in failed (' + r.status + ').';
  }, function () { out.textContent = 'The Admin API did not answer.'; });
});
