// Behaviour that the CSP keeps out of the templates (no inline script anywhere).
(function () {
  "use strict";
  // Escape closes the asset panel, like its close button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var close = document.querySelector("#twin-panel [data-role=panel-close]");
    if (close) {
      event.preventDefault();
      close.click();
    }
  });
})();
