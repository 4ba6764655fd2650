"use strict";
// The interactive map of a collection: every image a point, coloured by cluster or by known
// label; pan and zoom (drag, wheel, pinch, buttons, keys), hover for the image and its name,
// click to open it, a legend that highlights a cluster and lists its members, a lasso that
// selects images, a search by file name. Text from the data is only ever set with
// textContent; no markup is built from it. Works from disk (no request leaves the folder).
(() => {
  const NOISE = "#bbbbbb";
  const GRID = 128; // cells a side of the hover index
  const PAGE = 200; // thumbnails shown at a time in the member grid
  const COLOUR = /^#[0-9a-fA-F]{6}$/;

  const LAYOUT = `
    <div class="imap-tools">
      <input type="search" class="imap-search" placeholder="Find a file name"
        aria-label="Find images by file name">
      <button type="button" class="imap-zoom-in" aria-label="Zoom in" title="Zoom in (+)">+</button>
      <button type="button" class="imap-zoom-out" aria-label="Zoom out" title="Zoom out (-)">&minus;</button>
      <button type="button" class="imap-reset" title="Whole map (0)">Whole map</button>
      <button type="button" class="imap-lasso" aria-pressed="false"
        title="Draw around images to select them (or hold Shift while dragging)">Select</button>
      <label class="imap-colour">Colour by <select class="imap-colour-by">
        <option value="cluster">cluster</option><option value="label">known label</option>
      </select></label>
    </div>
    <div class="imap-stage">
      <canvas class="imap-canvas" tabindex="0" role="application"
        aria-label="Map of the images: arrow keys pan, + and - zoom, 0 shows the whole map, Enter opens the marked image"></canvas>
      <div class="imap-tip" hidden><div class="imap-tip-image"></div>
        <div class="imap-tip-name"></div><div class="imap-tip-group"></div></div>
    </div>
    <p class="imap-status" aria-live="polite"></p>
    <div class="imap-legend" role="group" aria-label="Clusters"></div>
    <div class="imap-members" hidden>
      <h3 class="imap-members-title"></h3>
      <div class="imap-grid"></div>
      <button type="button" class="imap-more" hidden>Show more</button>
    </div>`;

  function create(root, data, options = {}) {
    const n = data.n;
    const X = Float32Array.from(data.x, (v) => v / 65535);
    const Y = Float32Array.from(data.y, (v) => v / 65535);
    let C = Int32Array.from(data.c);
    let R = data.r ? Int32Array.from(data.r) : null;
    const L = data.l ? Int32Array.from(data.l) : null;
    const labels = data.labels || [];
    const names = data.names;
    let lowerNames = null;
    let clusters = data.clusters;
    const sprites = data.sprites;
    const view = { scale: 1, tx: 0, ty: 0 };
    let colourBy = "cluster";
    let highlight = null; // a cluster id, or a label index when coloured by label
    let selected = new Uint8Array(n);
    let selectedCount = 0;
    let hover = -1;
    let lasso = null;
    let lassoMode = false;
    let groups = null; // points ordered by colour group
    let frame = 0;
    let listed = [];
    let shown = 0;
    let listTitle = "";

    root.classList.add("imap");
    root.innerHTML = LAYOUT; // a constant: no data goes into markup
    const $ = (selector) => root.querySelector(selector);
    const canvas = $(".imap-canvas");
    const context = canvas.getContext("2d");
    const tip = $(".imap-tip");
    const status = $(".imap-status");
    const legend = $(".imap-legend");
    const members = $(".imap-members");
    const grid = $(".imap-grid");
    const more = $(".imap-more");
    const colourSelect = $(".imap-colour-by");
    if (!L) $(".imap-colour").hidden = true;

    // the hover index: the points of each cell of a GRID x GRID grid over the unit square
    const cellOf = (i) =>
      Math.min(GRID - 1, Math.floor(X[i] * GRID)) * GRID + Math.min(GRID - 1, Math.floor(Y[i] * GRID));
    const cellStart = new Int32Array(GRID * GRID + 1);
    const cellItems = new Int32Array(n);
    for (let i = 0; i < n; i++) cellStart[cellOf(i) + 1]++;
    for (let c = 0; c < GRID * GRID; c++) cellStart[c + 1] += cellStart[c];
    const fill = cellStart.slice(0, GRID * GRID);
    for (let i = 0; i < n; i++) cellItems[fill[cellOf(i)]++] = i;

    const clusterIndex = () => {
      const index = new Map();
      clusters.forEach((c, k) => index.set(c.id, k));
      return index;
    };
    let byId = clusterIndex();
    const colourOf = (hex) => (COLOUR.test(hex) ? hex : NOISE);
    const labelColour = (k) => `hsl(${Math.round((k * 137.508) % 360)} 65% 45%)`;

    function groupOf(i) {
      if (colourBy === "label") return L[i] >= 0 ? L[i] : labels.length;
      return byId.has(C[i]) ? byId.get(C[i]) : clusters.length;
    }
    function groupColours() {
      if (colourBy === "label") return [...labels.map((_, k) => labelColour(k)), NOISE];
      return [...clusters.map((c) => colourOf(c.colour)), NOISE];
    }
    function groupKey(g) {
      if (colourBy === "label") return g < labels.length ? g : null;
      return g < clusters.length ? clusters[g].id : null;
    }
    function buildGroups() {
      const colours = groupColours();
      const count = new Int32Array(colours.length + 1);
      for (let i = 0; i < n; i++) count[groupOf(i) + 1]++;
      for (let g = 0; g < colours.length; g++) count[g + 1] += count[g];
      const order = new Int32Array(n);
      const next = count.slice(0, colours.length);
      for (let i = 0; i < n; i++) order[next[groupOf(i)]++] = i;
      groups = { colours, start: count, order };
    }

    // screen position of a point: the unit square fitted into the canvas, then the view
    function frameSize() {
      const w = canvas.clientWidth, h = canvas.clientHeight;
      const base = Math.min(w, h) * 0.94;
      return { w, h, base, ox: (w - base) / 2, oy: (h - base) / 2 };
    }
    const sx = (f, i) => f.ox + X[i] * f.base * view.scale + view.tx;
    const sy = (f, i) => f.oy + Y[i] * f.base * view.scale + view.ty;
    const pointSize = () => Math.min(10, 3 * Math.sqrt(view.scale)) + (n < 2000 ? 2 : 0);

    function draw() {
      const began = performance.now();
      frame = 0;
      const dpr = window.devicePixelRatio || 1;
      const f = frameSize();
      if (canvas.width !== Math.round(f.w * dpr) || canvas.height !== Math.round(f.h * dpr)) {
        canvas.width = Math.round(f.w * dpr);
        canvas.height = Math.round(f.h * dpr);
      }
      context.setTransform(dpr, 0, 0, dpr, 0, 0);
      context.clearRect(0, 0, f.w, f.h);
      const size = pointSize(), half = size / 2;
      const { colours, start, order } = groups;
      const paint = (g, alpha) => {
        context.globalAlpha = alpha;
        context.fillStyle = colours[g];
        context.beginPath();
        for (let k = start[g]; k < start[g + 1]; k++) {
          const i = order[k], x = sx(f, i), y = sy(f, i);
          if (x > -size && y > -size && x < f.w + size && y < f.h + size) {
            context.rect(x - half, y - half, size, size);
          }
        }
        context.fill();
      };
      const lit = (g) => highlight === null || groupKey(g) === highlight;
      for (let g = colours.length - 1; g >= 0; g--) if (!lit(g)) paint(g, 0.12);
      for (let g = colours.length - 1; g >= 0; g--) if (lit(g)) paint(g, 0.9);
      context.globalAlpha = 1;
      if (selectedCount) {
        context.strokeStyle = "#000";
        context.lineWidth = 1.5;
        context.beginPath();
        for (let i = 0; i < n; i++) {
          if (selected[i]) context.rect(sx(f, i) - half - 1.5, sy(f, i) - half - 1.5, size + 3, size + 3);
        }
        context.stroke();
      }
      if (hover >= 0) {
        context.strokeStyle = "#000";
        context.lineWidth = 2;
        context.beginPath();
        context.arc(sx(f, hover), sy(f, hover), half + 5, 0, 2 * Math.PI);
        context.stroke();
      }
      if (lasso && lasso.length > 1) {
        context.strokeStyle = "#c00";
        context.setLineDash([4, 3]);
        context.beginPath();
        context.moveTo(lasso[0][0], lasso[0][1]);
        for (const [x, y] of lasso) context.lineTo(x, y);
        context.closePath();
        context.stroke();
        context.setLineDash([]);
      }
      const ended = performance.now();
      if (!root.dataset.drawnAt) root.dataset.drawnAt = ended.toFixed(1);
      root.dataset.drawMs = (ended - began).toFixed(2); // what one frame of pan or zoom costs
    }
    const redraw = () => {
      if (!frame) frame = requestAnimationFrame(draw);
    };

    function nearestPoint(px, py) {
      const f = frameSize();
      const unit = f.base * view.scale;
      const x = (px - f.ox - view.tx) / unit, y = (py - f.oy - view.ty) / unit;
      const reach = (pointSize() / 2 + 4) / unit;
      let best = -1, bestDistance = reach * reach;
      const lo = (v) => Math.max(0, Math.floor((v - reach) * GRID));
      const hi = (v) => Math.min(GRID - 1, Math.floor((v + reach) * GRID));
      for (let gx = lo(x); gx <= hi(x); gx++) {
        for (let gy = lo(y); gy <= hi(y); gy++) {
          const cell = gx * GRID + gy;
          for (let k = cellStart[cell]; k < cellStart[cell + 1]; k++) {
            const i = cellItems[k], dx = X[i] - x, dy = Y[i] - y, d = dx * dx + dy * dy;
            if (d <= bestDistance) { best = i; bestDistance = d; }
          }
        }
      }
      return best;
    }

    function spriteInto(element, i, scale) {
      element.textContent = "";
      if (!sprites) return;
      const cell = i % sprites.per_sheet, sheet = Math.floor(i / sprites.per_sheet);
      const side = sprites.side * scale;
      element.style.width = `${side}px`;
      element.style.height = `${side}px`;
      element.style.backgroundImage = `url("${encodeURI(sprites.sheets[sheet])}")`;
      element.style.backgroundSize = `${sprites.columns * side}px auto`;
      element.style.backgroundPosition =
        `-${(cell % sprites.columns) * side}px -${Math.floor(cell / sprites.columns) * side}px`;
    }
    function groupText(i) {
      const c = byId.get(C[i]);
      const cluster = C[i] < 0 ? "noise" : c !== undefined ? clusterName(clusters[c]) : `cluster ${C[i]}`;
      const label = L && L[i] >= 0 ? `; label ${labels[L[i]]}` : "";
      return cluster + label;
    }
    const clusterName = (c) => (c.id < 0 ? "noise" : c.name ? `${c.name} (${c.id})` : `cluster ${c.id}`);

    function showTip(i, px, py) {
      spriteInto($(".imap-tip-image"), i, 2);
      $(".imap-tip-name").textContent = names[i];
      $(".imap-tip-group").textContent = groupText(i);
      tip.hidden = false;
      const stage = canvas.getBoundingClientRect();
      const width = tip.offsetWidth, height = tip.offsetHeight;
      tip.style.left = `${Math.max(0, Math.min(stage.width - width, px + 14))}px`;
      tip.style.top = `${Math.max(0, py + 14 + height > stage.height ? py - height - 14 : py + 14)}px`;
    }
    function hideTip() {
      tip.hidden = true;
    }

    function link(i) {
      if (!data.links) return null;
      return data.links.root + data.links.paths[i];
    }
    function open(i) {
      if (options.open) return options.open(i);
      const url = link(i);
      if (url) window.open(url, "_blank", "noopener");
    }

    // pointer: drag pans (or draws a lasso), wheel zooms at the cursor, two fingers pinch
    const pointers = new Map();
    let drag = null;
    function zoomAt(px, py, factor) {
      const scale = Math.max(0.5, Math.min(400, view.scale * factor));
      factor = scale / view.scale;
      view.tx = px - (px - view.tx) * factor;
      view.ty = py - (py - view.ty) * factor;
      view.scale = scale;
      redraw();
    }
    const local = (event) => {
      const box = canvas.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      const [px, py] = local(event);
      pointers.set(event.pointerId, [px, py]);
      if (pointers.size === 2) {
        lasso = null;
        drag = { pinch: Math.hypot(...[...pointers.values()].reduce((a, b) => [a[0] - b[0], a[1] - b[1]])) };
      } else if (lassoMode || event.shiftKey) {
        lasso = [[px, py]];
      } else {
        drag = { x: px, y: py, moved: 0 };
      }
    });
    canvas.addEventListener("pointermove", (event) => {
      const [px, py] = local(event);
      if (pointers.has(event.pointerId)) pointers.set(event.pointerId, [px, py]);
      if (pointers.size === 2 && drag && drag.pinch) {
        const [a, b] = [...pointers.values()];
        const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
        zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, distance / drag.pinch);
        drag.pinch = distance;
        return;
      }
      if (lasso) {
        const last = lasso[lasso.length - 1];
        if (Math.hypot(px - last[0], py - last[1]) > 3) lasso.push([px, py]);
        return redraw();
      }
      if (drag) {
        view.tx += px - drag.x;
        view.ty += py - drag.y;
        drag.moved += Math.abs(px - drag.x) + Math.abs(py - drag.y);
        drag.x = px;
        drag.y = py;
        hideTip();
        return redraw();
      }
      const found = nearestPoint(px, py);
      if (found !== hover) {
        hover = found;
        redraw();
      }
      if (found >= 0) showTip(found, px, py);
      else hideTip();
    });
    const release = (event) => {
      pointers.delete(event.pointerId);
      const [px, py] = local(event);
      if (lasso) {
        const polygon = lasso;
        lasso = null;
        if (polygon.length > 2) selectInside(polygon);
        else redraw();
        return;
      }
      if (drag && !drag.pinch && drag.moved < 4) {
        const found = nearestPoint(px, py);
        if (found >= 0 && event.pointerType !== "mouse" && found !== hover) {
          hover = found; // a touch screen has no hover: the first tap shows, the second opens
          showTip(found, px, py);
          redraw();
        } else if (found >= 0) {
          open(found);
        }
      }
      if (pointers.size === 0) drag = null;
    };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("pointerleave", (event) => {
      if (event.pointerType !== "mouse") return; // a finger lifted: keep what the tap showed
      if (hover >= 0) { hover = -1; redraw(); }
      hideTip();
    });
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [px, py] = local(event);
      zoomAt(px, py, Math.exp(-event.deltaY / 300));
    }, { passive: false });
    canvas.addEventListener("keydown", (event) => {
      const f = frameSize(), step = 60;
      const keys = {
        ArrowLeft: () => { view.tx += step; }, ArrowRight: () => { view.tx -= step; },
        ArrowUp: () => { view.ty += step; }, ArrowDown: () => { view.ty -= step; },
        "+": () => zoomAt(f.w / 2, f.h / 2, 1.5), "=": () => zoomAt(f.w / 2, f.h / 2, 1.5),
        "-": () => zoomAt(f.w / 2, f.h / 2, 1 / 1.5), 0: reset,
        Enter: () => { if (hover >= 0) open(hover); }, // the image a search or the grid marked
        Escape: () => { clearSelection(); setHighlight(null); },
      };
      if (!(event.key in keys)) return;
      event.preventDefault();
      keys[event.key]();
      redraw();
    });
    function reset() {
      view.scale = 1; view.tx = 0; view.ty = 0;
      redraw();
    }
    $(".imap-zoom-in").addEventListener("click", () => { const f = frameSize(); zoomAt(f.w / 2, f.h / 2, 1.5); });
    $(".imap-zoom-out").addEventListener("click", () => { const f = frameSize(); zoomAt(f.w / 2, f.h / 2, 1 / 1.5); });
    $(".imap-reset").addEventListener("click", reset);
    const lassoButton = $(".imap-lasso");
    lassoButton.addEventListener("click", () => {
      lassoMode = !lassoMode;
      lassoButton.setAttribute("aria-pressed", String(lassoMode));
      canvas.classList.toggle("imap-selecting", lassoMode);
    });
    colourSelect.addEventListener("change", () => {
      colourBy = colourSelect.value;
      highlight = null;
      buildGroups();
      buildLegend();
      redraw();
    });

    function inside(polygon, x, y) {
      let hit = false;
      for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
        const [xa, ya] = polygon[a], [xb, yb] = polygon[b];
        if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) hit = !hit;
      }
      return hit;
    }
    function selectInside(polygon) {
      const f = frameSize();
      const xs = polygon.map((p) => p[0]), ys = polygon.map((p) => p[1]);
      const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      const chosen = [];
      for (let i = 0; i < n; i++) {
        const x = sx(f, i), y = sy(f, i);
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && inside(polygon, x, y)) chosen.push(i);
      }
      setSelection(chosen, `${chosen.length} selected`);
    }
    function setSelection(rows, title) {
      selected = new Uint8Array(n);
      for (const i of rows) selected[i] = 1;
      selectedCount = rows.length;
      highlight = null;
      markLegend();
      list(rows, title);
      redraw();
      if (options.onSelect) options.onSelect(rows);
    }
    function clearSelection() {
      selected = new Uint8Array(n);
      selectedCount = 0;
      members.hidden = true;
      if (options.onSelect) options.onSelect([]);
      redraw();
    }

    // the member grid: thumbnails of a cluster, a selection or a search, a page at a time
    function list(rows, title) {
      listed = rows;
      listTitle = title;
      shown = 0;
      grid.textContent = "";
      $(".imap-members-title").textContent = title;
      members.hidden = false;
      status.textContent = title;
      showMore();
    }
    function showMore() {
      const end = Math.min(listed.length, shown + PAGE);
      for (; shown < end; shown++) {
        const i = listed[shown];
        const item = document.createElement("button");
        item.type = "button";
        item.className = "imap-thumb";
        item.title = names[i];
        item.dataset.row = String(i);
        const picture = document.createElement("span");
        picture.className = "imap-thumb-image";
        spriteInto(picture, i, 1);
        const caption = document.createElement("span");
        caption.className = "imap-thumb-name";
        caption.textContent = names[i].split("/").pop();
        item.append(picture, caption);
        item.addEventListener("click", () => open(i));
        item.addEventListener("mouseenter", () => { hover = i; redraw(); });
        grid.append(item);
      }
      more.hidden = shown >= listed.length;
      more.textContent = `Show more (${listed.length - shown} of ${listed.length} not shown)`;
    }
    more.addEventListener("click", showMore);

    function membersOf(key) {
      const rows = [];
      for (let i = 0; i < n; i++) {
        if ((colourBy === "label" ? (L[i] >= 0 ? L[i] : null) : C[i]) === key) rows.push(i);
      }
      if (colourBy === "cluster" && R) rows.sort((a, b) => R[a] - R[b]);
      return rows;
    }
    function setHighlight(key) {
      highlight = key;
      markLegend();
      if (key === null) {
        members.hidden = true;
      } else {
        const rows = membersOf(key);
        const title = colourBy === "label" ? `label ${labels[key]}` : clusterName(clusters[byId.get(key)]);
        list(rows, `${title}: ${rows.length} images`);
      }
      redraw();
      if (options.onHighlight) options.onHighlight(colourBy === "cluster" ? key : null);
    }
    function markLegend() {
      legend.querySelectorAll("button").forEach((b) => {
        b.setAttribute("aria-pressed", String(b.dataset.key === String(highlight)));
      });
    }
    function buildLegend() {
      legend.textContent = "";
      const entries = colourBy === "label"
        ? labels.map((name, k) => ({ key: k, colour: labelColour(k), text: name }))
        : clusters.map((c) => ({ key: c.id, colour: colourOf(c.colour), text: `${clusterName(c)}: ${c.size}` }));
      for (const entry of entries) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.key = String(entry.key);
        button.setAttribute("aria-pressed", "false");
        const swatch = document.createElement("span");
        swatch.className = "imap-swatch";
        swatch.style.background = entry.colour;
        const text = document.createElement("span");
        text.textContent = entry.text;
        button.append(swatch, text);
        button.addEventListener("click", () => setHighlight(highlight === entry.key ? null : entry.key));
        legend.append(button);
      }
      markLegend();
    }

    const search = $(".imap-search");
    function find() {
      const query = search.value.trim().toLowerCase();
      if (!query) return clearSelection();
      if (!lowerNames) lowerNames = names.map((name) => name.toLowerCase());
      const rows = [];
      for (let i = 0; i < n; i++) if (lowerNames[i].includes(query)) rows.push(i);
      setSelection(rows, `${rows.length} found for "${search.value.trim()}"`);
      if (rows.length) centreOn(rows[0]);
    }
    function centreOn(i) {
      const f = frameSize();
      view.scale = Math.max(view.scale, 4);
      view.tx = f.w / 2 - f.ox - X[i] * f.base * view.scale;
      view.ty = f.h / 2 - f.oy - Y[i] * f.base * view.scale;
      hover = i;
      redraw();
    }
    let typing = 0;
    search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(find, 250); });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { clearTimeout(typing); find(); }
    });

    new ResizeObserver(redraw).observe(canvas);
    buildGroups();
    buildLegend();
    status.textContent = `${n.toLocaleString()} images. Hover for a name, click to open, drag to pan, wheel or +/- to zoom.`;
    draw();

    return {
      selection: () => { const rows = []; for (let i = 0; i < n; i++) if (selected[i]) rows.push(i); return rows; },
      highlighted: () => (colourBy === "cluster" ? highlight : null),
      update(next) {
        C = Int32Array.from(next.c);
        if (next.r) R = Int32Array.from(next.r);
        clusters = next.clusters;
        byId = clusterIndex();
        if (highlight !== null && colourBy === "cluster" && !byId.has(highlight)) highlight = null;
        buildGroups();
        buildLegend();
        if (highlight !== null) setHighlight(highlight);
        else if (selectedCount) list(this.selection(), listTitle);
        redraw();
      },
      clearSelection,
      setHighlight,
      centreOn,
    };
  }

  window.ImgclustMap = { create };
  document.querySelectorAll("[data-imgclust-map]").forEach((root) => {
    const source = document.getElementById(root.dataset.imgclustMap);
    if (source) create(root, JSON.parse(source.textContent));
  });
})();
