// Backoffice live map: state and changes arrive over /ws/fleet/; details come from the REST API.
// Couriers and orders are drawn on one canvas, redrawn each animation frame while something
// moves: thousands of points cost one loop per frame, not one DOM element each.
(function () {
  "use strict";
  // Options come as JSON from the page (the Content-Security-Policy allows no inline script).
  const cfg = JSON.parse(document.getElementById("backoffice-config").textContent);
  const map = L.map("map").setView([-23.5505, -46.6333], 12);
  L.tileLayer(cfg.tileUrl, {maxZoom: 19, attribution: "&copy; OpenStreetMap"}).addTo(map);

  const GLIDE_MS = 800;          // a courier slides to its new position instead of jumping
  const CLUSTER_BELOW_ZOOM = 11; // below it, couriers are counted per grid cell
  const CELL_PX = 48, HIT_PX = 10;
  const ORDER_COLOURS = {pending: "#8a8a8a", assigned: "#1d5fd1", in_transit: "#d1401d"};

  // The fleet socket's compact rows (tracking/serializers.py):
  // courier [id, lat, lon, recorded_at_ms, speed_mps, name?]; order [id, status, dest_lat,
  // dest_lon, courier_id, courier_name, distance_m, eta_s]. Positions are kept in world
  // pixels at zoom 0, so a frame only scales and shifts them.
  const couriers = new Map(); // id -> {name, t, speed, x0, y0, x1, y1, moved}
  const orders = new Map();   // id -> {status, lat, lon, x, y, courierId, courierName, distance, eta}
  let busyCouriers = new Set(); // couriers carrying an order shown on the map
  let shown = filters(), trail = null, dirty = true;

  function filters() { return new Set([...document.querySelectorAll("#filters input:checked")].map((i) => i.value)); }
  function world(lat, lon) { return map.project([lat, lon], 0); }
  function isStale(c, now) { return now - c.t > cfg.staleAfterS * 1000; }

  function courierAt(c, now) {
    // Linear glide from the drawn position to the newest one.
    const k = Math.min(1, (now - c.moved) / GLIDE_MS);
    return [c.x0 + (c.x1 - c.x0) * k, c.y0 + (c.y1 - c.y0) * k];
  }

  function courierUpsert(row, now) {
    const [id, lat, lon, t, speed, name] = row;
    const c = couriers.get(id);
    const p = world(lat, lon);
    if (!c) {
      couriers.set(id, {name: name ?? id.slice(0, 8), t, speed, x0: p.x, y0: p.y, x1: p.x, y1: p.y, moved: 0});
      return;
    }
    if (name != null) c.name = name;
    if (t < c.t) return; // the socket may repeat an older position after a (re)connect
    [c.x0, c.y0] = courierAt(c, now);
    c.x1 = p.x; c.y1 = p.y; c.t = t; c.speed = speed; c.moved = now;
  }

  function orderUpsert(row) {
    const [id, status, lat, lon, courierId, courierName, distance, eta] = row;
    if (status === "delivered" || status === "cancelled") { orders.delete(id); return; }
    const p = world(lat, lon);
    orders.set(id, {status, lat, lon, x: p.x, y: p.y, courierId, courierName, distance, eta});
  }

  function apply(msg) {
    const now = performance.now();
    if (msg.type === "state") {
      // The whole picture: what is no longer in it has left the map.
      const known = new Set(msg.c.map((r) => r[0]));
      for (const id of couriers.keys()) if (!known.has(id)) couriers.delete(id);
      orders.clear();
    }
    msg.c.forEach((r) => courierUpsert(r, now));
    msg.o.forEach(orderUpsert);
    if (msg.o.length || msg.type === "state") refreshBusy();
    document.getElementById("counts").textContent = `${couriers.size} entregadores · ${orders.size} pedidos`;
    dirty = true;
  }

  function refreshBusy() {
    busyCouriers = new Set();
    for (const o of orders.values()) if (o.courierId && shown.has(o.status)) busyCouriers.add(o.courierId);
  }

  function visibleCourier(id) { return shown.has("idle") || busyCouriers.has(id); }

  // The canvas sits over the tiles and the trail, under the controls; clicks reach the map.
  const canvas = L.DomUtil.create("canvas", "fleet-canvas", map.getContainer());
  const ctx = canvas.getContext("2d");
  let frames = 0;

  function resize() {
    const size = map.getSize(), ratio = window.devicePixelRatio || 1;
    canvas.width = size.x * ratio; canvas.height = size.y * ratio;
    canvas.style.width = size.x + "px"; canvas.style.height = size.y + "px";
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    dirty = true;
  }

  function toScreen(x, y, view) { return [x * view.scale - view.left, y * view.scale - view.top]; }
  function viewNow() {
    const origin = map.getPixelBounds().min;
    return {scale: Math.pow(2, map.getZoom()), left: origin.x, top: origin.y, size: map.getSize()};
  }

  function draw(now) {
    const view = viewNow(), wall = Date.now();
    ctx.clearRect(0, 0, view.size.x, view.size.y);
    let moving = false;
    const fresh = new Path2D(), stale = new Path2D();
    const cells = view.scale < Math.pow(2, CLUSTER_BELOW_ZOOM) ? new Map() : null;
    for (const [id, c] of couriers) {
      if (!visibleCourier(id)) continue;
      if (now - c.moved < GLIDE_MS) moving = true;
      const [wx, wy] = courierAt(c, now);
      const [x, y] = toScreen(wx, wy, view);
      if (x < -10 || y < -10 || x > view.size.x + 10 || y > view.size.y + 10) continue;
      if (cells) {
        const key = Math.floor(x / CELL_PX) + ":" + Math.floor(y / CELL_PX);
        const cell = cells.get(key);
        if (cell) { cell.n++; cell.x += x; cell.y += y; } else cells.set(key, {n: 1, x, y});
        continue;
      }
      const path = isStale(c, wall) ? stale : fresh;
      path.moveTo(x + 6, y); path.arc(x, y, 6, 0, 2 * Math.PI);
    }
    ctx.lineWidth = 2;
    ctx.fillStyle = "#ffd400"; ctx.strokeStyle = "#1f1f1f"; ctx.fill(fresh); ctx.stroke(fresh);
    ctx.fillStyle = "#bbb"; ctx.strokeStyle = "#777"; ctx.fill(stale); ctx.stroke(stale);
    if (cells) {
      ctx.font = "bold 11px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      for (const cell of cells.values()) {
        const x = cell.x / cell.n, y = cell.y / cell.n, r = 8 + Math.min(14, Math.log2(cell.n) * 2);
        ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fillStyle = "rgba(255, 212, 0, 0.85)"; ctx.fill(); ctx.strokeStyle = "#1f1f1f"; ctx.stroke();
        ctx.fillStyle = "#1f1f1f"; ctx.fillText(String(cell.n), x, y);
      }
    }
    for (const o of orders.values()) {
      if (!shown.has(o.status)) continue;
      const [x, y] = toScreen(o.x, o.y, view);
      if (x < -10 || y < -10 || x > view.size.x + 10 || y > view.size.y + 10) continue;
      ctx.fillStyle = ORDER_COLOURS[o.status] || "#8a8a8a"; ctx.strokeStyle = "#fff";
      ctx.beginPath(); ctx.moveTo(x, y - 7); ctx.lineTo(x + 7, y); ctx.lineTo(x, y + 7); ctx.lineTo(x - 7, y); ctx.closePath();
      ctx.fill(); ctx.stroke();
    }
    return moving;
  }

  function frame(now) {
    frames++;
    if (dirty) dirty = draw(now);
    requestAnimationFrame(frame);
  }
  resize();
  map.on("resize", resize);
  map.on("move zoom viewreset", () => { dirty = true; });
  map.on("zoomanim", () => { canvas.style.visibility = "hidden"; });
  map.on("zoomend", () => { canvas.style.visibility = ""; dirty = true; });
  // Staleness changes with time alone: redraw now and then even when nothing moves.
  setInterval(() => { dirty = true; }, 5000);
  requestAnimationFrame(frame);

  function pointOf(kind, id, view = viewNow(), now = performance.now()) {
    if (kind === "order") { const o = orders.get(id); return o && toScreen(o.x, o.y, view); }
    const c = couriers.get(id);
    return c && toScreen(...courierAt(c, now), view);
  }

  function hit(point) {
    // Orders are drawn over couriers, so they win a tie.
    let best = null, bestD = HIT_PX * HIT_PX;
    const view = viewNow(), now = performance.now();
    for (const [id, o] of orders) {
      if (!shown.has(o.status)) continue;
      const [x, y] = pointOf("order", id, view, now), d = (x - point.x) ** 2 + (y - point.y) ** 2;
      if (d <= bestD) { best = ["order", id]; bestD = d; }
    }
    if (best || map.getZoom() < CLUSTER_BELOW_ZOOM) return best;
    for (const id of couriers.keys()) {
      if (!visibleCourier(id)) continue;
      const [x, y] = pointOf("courier", id, view, now), d = (x - point.x) ** 2 + (y - point.y) ** 2;
      if (d < bestD) { best = ["courier", id]; bestD = d; }
    }
    return best;
  }

  map.on("click", (e) => {
    const found = hit(e.containerPoint);
    if (!found) return;
    found[0] === "order" ? showOrder(found[1]) : showCourier(found[1]);
  });
  map.on("mousemove", (e) => { map.getContainer().style.cursor = hit(e.containerPoint) ? "pointer" : ""; });

  document.querySelectorAll("#filters input").forEach((i) => i.addEventListener("change", () => {
    shown = filters(); refreshBusy(); dirty = true;
  }));

  const details = document.getElementById("details");
  function row(k, v) { return `<tr><td>${k}</td><td>${v ?? "—"}</td></tr>`; }
  function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch])); }

  function showCourier(id) {
    const c = couriers.get(id);
    const carried = [...orders].filter(([, o]) => o.courierId === id && o.status !== "pending").map(([oid]) => oid);
    details.innerHTML = `<h2>${esc(c.name)}</h2><table>${row("visto", new Date(c.t).toLocaleTimeString())}
      ${row("velocidade", c.speed != null ? (c.speed * 3.6).toFixed(0) + " km/h" : null)}</table>
      <h3>Pedidos</h3>${carried.map((o) => `<a href="#" data-show-order="${esc(o)}">${esc(o.slice(0, 8))}</a>`).join("<br>") || "nenhum"}`;
    details.querySelectorAll("[data-show-order]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); showOrder(a.dataset.showOrder); }));
  }

  async function showOrder(id) {
    const o = orders.get(id) || {};
    details.innerHTML = `<h2>Pedido ${esc(id.slice(0, 8))}</h2><table>${row("status", esc(o.status))}
      ${row("entregador", o.courierName && esc(o.courierName))}
      ${row("distância", o.distance != null ? Math.round(o.distance) + " m" : null)}
      ${row("ETA", o.eta != null ? Math.round(o.eta / 60) + " min" : null)}</table>
      <h3>Trajeto</h3><p id="trail-info">carregando…</p><h3>Notificações</h3><div id="notifications">—</div>`;
    const track = await (await fetch(`/api/v1/orders/${id}/track`)).json();
    const points = track.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    if (trail) trail.remove();
    trail = L.polyline(points, {color: "#d1401d", weight: 4, className: "order-trail"}).addTo(map);
    document.getElementById("trail-info").textContent = `${points.length} pontos`;
    if (points.length) map.fitBounds(trail.getBounds().extend([o.lat != null ? [o.lat, o.lon] : points[0]]), {maxZoom: 16});
    const response = await fetch(`/api/v1/orders/${id}/notifications`);
    if (response.ok) {
      const list = await response.json();
      document.getElementById("notifications").innerHTML = list.length
        ? `<table>${list.map((n) => row(esc(n.kind), esc(n.status) + (n.error ? " — " + esc(n.error) : ""))).join("")}</table>` : "nenhuma";
    }
  }

  const badge = document.getElementById("connection");
  const received = {messages: 0, bytes: 0, stateAt: null};
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/fleet/`);
    ws.onopen = () => { badge.textContent = "ao vivo"; badge.classList.add("live"); };
    ws.onclose = () => { badge.textContent = "reconectando…"; badge.classList.remove("live"); setTimeout(connect, 2000); };
    ws.onmessage = (event) => {
      received.messages++; received.bytes += event.data.length;
      const msg = JSON.parse(event.data);
      apply(msg);
      if (msg.type === "state") received.stateAt = performance.now();
    };
  }
  connect();

  // For operators' consoles, the browser tests and the benchmark.
  window.fleet = {
    map,
    courierLatLng(id) {
      const c = couriers.get(id);
      return c ? map.unproject(courierAt(c, performance.now()), 0) : null;
    },
    // Where a courier or order is drawn, in pixels from the map's top-left corner.
    point(kind, id) { const p = pointOf(kind, id); return p ? {x: p[0], y: p[1]} : null; },
    isStale(id) { return couriers.has(id) && isStale(couriers.get(id), Date.now()); },
    stats: () => ({couriers: couriers.size, orders: orders.size, frames, ...received}),
    showOrder,
  };
})();
