// The trail map on the admin's order page (tracking/admin.py); data in the div's data-map.
(function () {
  const el = document.getElementById("trail-map");
  const data = JSON.parse(el.dataset.map);
  const map = L.map(el).setView(data.destination, 14);
  L.tileLayer(data.tile_url, {maxZoom: 19}).addTo(map);
  L.circleMarker(data.destination, {radius: 8, color: "#1f1f1f", fillColor: "#ffd400", fillOpacity: 1})
    .bindTooltip("destino").addTo(map);
  if (data.trail.length) {
    const line = L.polyline(data.trail, {color: "#d1401d", weight: 4}).addTo(map);
    map.fitBounds(line.getBounds().extend(data.destination), {maxZoom: 16});
  }
})();
