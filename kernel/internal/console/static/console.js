// Progressive enhancement for the Edulure console. Every page works
// without this script: forms post and the server answers with the next
// page. With it, destructive forms ask first, "Copy" buttons copy, and on
// a narrow screen the menu starts folded.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var q = form.getAttribute("data-confirm");
    if (q && !window.confirm(q)) {
      e.preventDefault();
    }
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent.trim()).then(function () { b.textContent = "Copied"; });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var menu = document.querySelector("details.menu");
    if (menu && window.matchMedia("(max-width: 45rem)").matches) {
      menu.removeAttribute("open");
    }
  });
})();
