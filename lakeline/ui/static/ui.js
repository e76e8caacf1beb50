// lakeline ui: the little JavaScript every page shares.
"use strict";
(function () {
  // Actions ask before they POST (the server checks the CSRF token as well).
  document.querySelectorAll("form.action[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();

// The JSON a page embedded with macros.data(id, value).
window.lakelineData = function (id) {
  var el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
};
