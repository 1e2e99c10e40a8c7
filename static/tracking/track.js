/* The consumer's tracking page. `applyState(state)` draws one state object, the payload of
 * GET /api/v1/track/{code} and of the websocket /ws/track/{code}/. The socket feeds it live;
 * while the socket is down, polling does. */
(function (global) {
  "use strict";

  var STEPS = { pending: 1, assigned: 2, in_transit: 3, delivered: 4, cancelled: 0 };
  var FINAL = { delivered: true, cancelled: true };
  var page = { map: null, courierMarker: null, homeMarker: null, timer: null, options: null, socket: null, final: false };

  function el(id) { return document.getElementById(id); }

  function etaText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var minutes = Math.max(1, Math.round(seconds / 60));
    return minutes <= 1 ? "Chega em cerca de 1 minuto" : "Chega em cerca de " + minutes + " minutos";
  }

  function applyState(state) {
    el("status").textContent = state.status_label;
    var eta = etaText(state.eta_seconds);
    el("eta").textContent = eta;
    el("eta").hidden = !eta;
    el("courier").textContent = state.courier_first_name ? "Entregador: " + state.courier_first_name : "";
    el("courier").hidden = !state.courier_first_name;
    var steps = el("steps").children;
    for (var i = 0; i < steps.length; i++) steps[i].className = i < STEPS[state.status] ? "done" : "";
    if (state.updated_at) {
      el("updated").textContent = "Atualizado às " + new Date(state.updated_at).toLocaleTimeString("pt-BR");
    }
    if (page.map && !state.destination) {
      // Long after the end the link shows the status only: no map.
      page.map.remove();
      page.map = null;
      page.courierMarker = null;
      el("map").hidden = true;
    }
    if (page.map) {
      var home = [state.destination.lat, state.destination.lon];
      page.homeMarker.setLatLng(home);
      if (state.location) {
        var here = [state.location.lat, state.location.lon];
        if (!page.courierMarker) page.courierMarker = L.marker(here, { title: "Entregador" }).addTo(page.map);
        page.courierMarker.setLatLng(here);
        page.map.fitBounds(L.latLngBounds([home, here]).pad(0.3), { maxZoom: 17 });
      } else if (page.courierMarker) {
        // Not in transit any more: the courier's position is no longer the consumer's business.
        page.map.removeLayer(page.courierMarker);
        page.courierMarker = null;
        page.map.setView(home, 15);
      }
    }
    if (FINAL[state.status]) {
      page.final = true;
      stopPolling();
    }
  }

  function startPolling() {
    if (!page.timer && !page.final) page.timer = setInterval(poll, page.options.intervalMs || 5000);
  }

  function stopPolling() {
    if (page.timer) clearInterval(page.timer);
    page.timer = null;
  }

  function connect() {
    if (!global.WebSocket || !page.options.socketUrl || page.final) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + page.options.socketUrl);
    socket.onopen = function () { stopPolling(); document.body.dataset.live = "true"; };
    socket.onmessage = function (event) { applyState(JSON.parse(event.data)); };
    socket.onclose = function () {
      document.body.dataset.live = "false";
      startPolling();
      if (!page.final) setTimeout(connect, 5000);
    };
    page.socket = socket;
  }

  function poll() {
    fetch(page.options.stateUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) { if (state) applyState(state); })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function start(options) {
    page.options = options;
    var state = options.initialState;
    if (!state.destination) el("map").hidden = true;
    if (global.L && state.destination) {
      L.Icon.Default.imagePath = options.iconPath;
      page.map = L.map("map", { zoomControl: true });
      L.tileLayer(options.tileUrl, { maxZoom: 19, attribution: options.tileAttribution }).addTo(page.map);
      var home = [state.destination.lat, state.destination.lon];
      page.homeMarker = L.circleMarker(home, { radius: 8, color: "#1d1d1b", fillColor: "#ffcc00", fillOpacity: 1 })
        .addTo(page.map).bindTooltip("Seu endereço");
      page.map.setView(home, 15);
    }
    applyState(state);
    startPolling();
    connect();
  }

  global.ZeTrack = {
    start: start,
    applyState: applyState,
    courierLatLng: function () { return page.courierMarker ? page.courierMarker.getLatLng() : null; },
  };

  // The page passes its options as JSON (the Content-Security-Policy allows no inline script).
  var config = document.getElementById("track-config");
  if (config) {
    var options = JSON.parse(config.textContent);
    options.initialState = JSON.parse(document.getElementById("initial-state").textContent);
    start(options);
  }
})(window);
