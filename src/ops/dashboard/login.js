'use strict';
// Stores the token in a same-site cookie (sent with every same-origin request) and reloads.
document.getElementById('token-form').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var v = document.getElementById('token').value;
  document.cookie = 'ep_token=' + encodeURIComponent(v) + '; path=/; SameSite=Strict';
  location.reload();
});
