// Backoffice live map: state and changes arrive over /ws/fleet/; details come from the REST API.
(function () {
  "use strict";
  // Options come as JSON from the page (the Content-Security-Policy allows no inline script).
  const cfg = JSON.parse(document.getElementById("backoffice-config").textContent);
  const map = L.map("map").setView([-23.5505, -46.6333], 12);
  L.tileLayer(cfg.tileUrl, {maxZoom: 19, attribution: "&copy; OpenStreetMap"}).addTo(map);

  const couriers = new Map(); // id -> {data, marker}
  const orders = new Map();   // id -> {data, marker}
  let trail = null;
  const filters = () => new Set([...document.querySelectorAll("#filters input:checked")].map((i) => i.value));

  function ageSeconds(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : Infinity; }

  function glide(marker, to) {
    // Markers slide to their new position instead of jumping.
    const from = marker.getLatLng(), start = performance.now(), ms = 800;
    marker._target = to;
    function step(now) {
      if (marker._target !== to) return;
      const t = Math.min(1, (now - start) / ms);
      marker.setLatLng([from.lat + (to[0] - from.lat) * t, from.lng + (to[1] - from.lng) * t]);
      if (t < 1) requestAnimationFrame(step);
    }
    requestAnimationFrame(step);
  }

  function courierIcon(c) {
    const stale = ageSeconds(c.location && c.location.recorded_at) > cfg.staleAfterS;
    return L.divIcon({className: "", iconSize: [16, 16],
      html: `<div class="courier-icon${stale ? " stale" : ""}" data-courier-id="${esc(c.courier_id)}" title="${esc(c.name)}"></div>`});
  }
  function orderIcon(o) {
    return L.divIcon({className: "", iconSize: [14, 14],
      html: `<div class="order-icon ${esc(o.status)}" data-order-id="${esc(o.order_id)}"></div>`});
  }
  function newer(old, next) {
    const a = old && old.location && old.location.recorded_at, b = next.location && next.location.recorded_at;
    return !a || !b || Date.parse(b) >= Date.parse(a);
  }

  function upsertCourier(c) {
    const entry = couriers.get(c.courier_id);
    if (entry && !newer(entry.data, c)) return;
    if (!c.location) return;
    const at = [c.location.lat, c.location.lon];
    if (entry) {
      entry.data = c; entry.marker.setIcon(courierIcon(c)); glide(entry.marker, at);
    } else {
      const marker = L.marker(at, {icon: courierIcon(c)}).on("click", () => showCourier(c.courier_id));
      couriers.set(c.courier_id, {data: c, marker});
    }
    applyFilters();
  }

  function upsertOrder(o) {
    const entry = orders.get(o.order_id);
    if (o.status === "delivered" || o.status === "cancelled") {
      if (entry) { entry.marker.remove(); orders.delete(o.order_id); }
      return applyFilters();
    }
    const at = [o.destination.lat, o.destination.lon];
    if (entry) { entry.data = o; entry.marker.setIcon(orderIcon(o)); }
    else {
      const marker = L.marker(at, {icon: orderIcon(o)}).on("click", () => showOrder(o.order_id));
      orders.set(o.order_id, {data: o, marker});
    }
    applyFilters();
  }

  function applyFilters() {
    const on = filters();
    for (const {data, marker} of couriers.values()) {
      const show = data.active_order_ids.length ? true : on.has("idle");
      show ? marker.addTo(map) : marker.remove();
    }
    for (const {data, marker} of orders.values()) on.has(data.status) ? marker.addTo(map) : marker.remove();
    document.getElementById("counts").textContent = `${couriers.size} entregadores · ${orders.size} pedidos`;
  }
  document.querySelectorAll("#filters input").forEach((i) => i.addEventListener("change", applyFilters));
  setInterval(() => { for (const {data, marker} of couriers.values()) marker.setIcon(courierIcon(data)); }, 10000);

  const details = document.getElementById("details");
  function row(k, v) { return `<tr><td>${k}</td><td>${v ?? "—"}</td></tr>`; }
  function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch])); }

  function showCourier(id) {
    const c = couriers.get(id).data;
    details.innerHTML = `<h2>${esc(c.name)}</h2><table>${row("visto", c.location && new Date(c.location.recorded_at).toLocaleTimeString())}
      ${row("velocidade", c.speed_mps != null ? (c.speed_mps * 3.6).toFixed(0) + " km/h" : null)}</table>
      <h3>Pedidos</h3>${c.active_order_ids.map((o) => `<a href="#" data-show-order="${esc(o)}">${esc(o.slice(0, 8))}</a>`).join("<br>") || "nenhum"}`;
    details.querySelectorAll("[data-show-order]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); showOrder(a.dataset.showOrder); }));
  }

  async function showOrder(id) {
    const o = orders.get(id) ? orders.get(id).data : {order_id: id};
    details.innerHTML = `<h2>Pedido ${esc(id.slice(0, 8))}</h2><table>${row("status", esc(o.status))}
      ${row("entregador", o.courier && esc(o.courier.name))}
      ${row("distância", o.distance_to_destination_m != null ? Math.round(o.distance_to_destination_m) + " m" : null)}
      ${row("ETA", o.eta_seconds != null ? Math.round(o.eta_seconds / 60) + " min" : null)}</table>
      <h3>Trajeto</h3><p id="trail-info">carregando…</p><h3>Notificações</h3><div id="notifications">—</div>`;
    const track = await (await fetch(`/api/v1/orders/${id}/track`)).json();
    const points = track.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    if (trail) trail.remove();
    trail = L.polyline(points, {color: "#d1401d", weight: 4, className: "order-trail"}).addTo(map);
    document.getElementById("trail-info").textContent = `${points.length} pontos`;
    if (points.length) map.fitBounds(trail.getBounds().extend([o.destination ? [o.destination.lat, o.destination.lon] : points[0]]), {maxZoom: 16});
    const response = await fetch(`/api/v1/orders/${id}/notifications`);
    if (response.ok) {
      const list = await response.json();
      document.getElementById("notifications").innerHTML = list.length
        ? `<table>${list.map((n) => row(esc(n.kind), esc(n.status) + (n.error ? " — " + esc(n.error) : ""))).join("")}</table>` : "nenhuma";
    }
  }

  const badge = document.getElementById("connection");
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/fleet/`);
    ws.onopen = () => { badge.textContent = "ao vivo"; badge.classList.add("live"); };
    ws.onclose = () => { badge.textContent = "reconectando…"; badge.classList.remove("live"); setTimeout(connect, 2000); };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "state") { msg.orders.forEach(upsertOrder); msg.couriers.forEach(upsertCourier); }
      else if (msg.type === "courier") upsertCourier(msg.courier);
      else if (msg.type === "order") upsertOrder(msg.order);
    };
  }
  connect();

  // For operators' consoles and the browser tests.
  window.fleet = {
    map,
    courierLatLng: (id) => couriers.has(id) ? couriers.get(id).marker.getLatLng() : null,
    showOrder,
  };
})();
