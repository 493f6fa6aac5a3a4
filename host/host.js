// The host emulator: stands in for the Kustomer agent desktop around the adapter iframe.
// Kustomer opens app iframes with `parentUrl` (the desktop's URL) and `id` query parameters.
"use strict";

(function () {
  const config = window.HOST_CONFIG || {};
  const frame = document.getElementById("adapter-frame");
  let adapterUrl;
  try {
    adapterUrl = new URL(config.adapterUrl || "http://127.0.0.1:8700/");
  } catch (error) {
    document.querySelector(".adapter-dock").textContent =
      "The adapter URL in the host configuration is not a URL: " + config.adapterUrl;
    return;
  }
  adapterUrl.searchParams.set("parentUrl", window.location.href);
  adapterUrl.searchParams.set("id", "ccai-adapter");
  frame.src = adapterUrl.toString();
})();
