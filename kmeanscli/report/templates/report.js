(function () {
  "use strict";

  // One zoom and one view centre (a fraction of the image) shared by every viewer, so the
  // original and each result are always seen at the same place and scale.
  var view = { zoom: 0, cx: 0.5, cy: 0.5 };
  var viewers = Array.prototype.slice.call(document.querySelectorAll(".viewer"));
  var original = document.getElementById("original");

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function geometry(v) {
    var w = +v.dataset.w, h = +v.dataset.h;
    var vw = v.clientWidth, vh = v.clientHeight;
    var scale = view.zoom ? view.zoom : vw / w;
    var sw = w * scale, sh = h * scale;
    // an image smaller than the view is centred in it (a negative offset)
    var ox = Math.round(sw < vw ? (sw - vw) / 2 : clamp(view.cx * sw - vw / 2, 0, sw - vw));
    var oy = Math.round(sh < vh ? (sh - vh) / 2 : clamp(view.cy * sh - vh / 2, 0, sh - vh));
    return { vw: vw, vh: vh, sw: sw, sh: sh, ox: ox, oy: oy, scale: scale };
  }

  function layout(v) {
    var g = geometry(v);
    var stage = v.querySelector(".stage");
    var after = v.querySelector(".after");
    var split = v.querySelector(".split");
    var at = +split.getAttribute("aria-valuenow") / 100 * g.vw;
    stage.style.width = g.sw + "px";
    stage.style.height = g.sh + "px";
    stage.style.transform = "translate(" + -g.ox + "px, " + -g.oy + "px)";
    after.style.clipPath = "inset(0 0 0 " + Math.max(0, at + g.ox) + "px)";
    split.style.left = at + "px";
    v.classList.toggle("pixelated", g.scale > 1);
    v.classList.toggle("zoomed", view.zoom > 0);
  }

  function layoutAll() { viewers.forEach(layout); }

  function setSplit(v, percent) {
    var split = v.querySelector(".split");
    var p = Math.round(clamp(percent, 0, 100) * 10) / 10;
    split.setAttribute("aria-valuenow", String(p));
    split.setAttribute("aria-valuetext", p + "%");
    layout(v);
  }

  function setZoom(zoom) {
    view.zoom = zoom;
    document.querySelectorAll(".zoom button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(+b.dataset.zoom === zoom));
    });
    layoutAll();
  }

  viewers.forEach(function (v) {
    var before = v.querySelector(".before");
    if (!before.getAttribute("src") && original) {
      before.src = original.src;  // the original is in the page once, shown in every viewer
    }
    var split = v.querySelector(".split");
    var drag = null;

    function percentAt(e) {
      var r = v.getBoundingClientRect();
      return (e.clientX - r.left) / r.width * 100;
    }

    v.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      var panning = view.zoom > 0 && e.target !== split;
      drag = { id: e.pointerId, pan: panning, x: e.clientX, y: e.clientY, cx: view.cx, cy: view.cy };
      v.setPointerCapture(e.pointerId);
      v.classList.toggle("panning", panning);
      if (!panning) {
        setSplit(v, percentAt(e));
        split.focus({ preventScroll: true });
      }
      e.preventDefault();
    });
    v.addEventListener("pointermove", function (e) {
      if (!drag || e.pointerId !== drag.id) return;
      if (drag.pan) {
        var g = geometry(v);
        view.cx = clamp(drag.cx - (e.clientX - drag.x) / g.sw, 0, 1);
        view.cy = clamp(drag.cy - (e.clientY - drag.y) / g.sh, 0, 1);
        layoutAll();
      } else {
        setSplit(v, percentAt(e));
      }
    });
    function end(e) {
      if (drag && e.pointerId === drag.id) {
        drag = null;
        v.classList.remove("panning");
      }
    }
    v.addEventListener("pointerup", end);
    v.addEventListener("pointercancel", end);

    // Focused and zoomed, the viewer pans with the arrow keys: a tenth of the view a press,
    // half with Shift; Home and End go to the left and right edges.
    v.addEventListener("keydown", function (e) {
      if (e.target !== v || !view.zoom) return;
      var g = geometry(v);
      var part = e.shiftKey ? 0.5 : 0.1;
      var dx = part * g.vw / g.sw, dy = part * g.vh / g.sh;
      // start from what is shown: the centre may be clamped at an edge
      var cx = g.sw > g.vw ? (g.ox + g.vw / 2) / g.sw : view.cx;
      var cy = g.sh > g.vh ? (g.oy + g.vh / 2) / g.sh : view.cy;
      var moves = { ArrowLeft: [-dx, 0], ArrowRight: [dx, 0], ArrowUp: [0, -dy],
                    ArrowDown: [0, dy], Home: [-1, 0], End: [1, 0] };
      var m = moves[e.key];
      if (!m) return;
      view.cx = clamp(cx + m[0], 0, 1);
      view.cy = clamp(cy + m[1], 0, 1);
      layoutAll();
      e.preventDefault();
    });

    split.addEventListener("keydown", function (e) {
      var now = +split.getAttribute("aria-valuenow");
      var step = e.shiftKey ? 10 : 1;
      var next = { ArrowLeft: now - step, ArrowDown: now - step, ArrowRight: now + step,
                   ArrowUp: now + step, PageDown: now - 10, PageUp: now + 10, Home: 0, End: 100 }[e.key];
      if (next === undefined) return;
      setSplit(v, next);
      e.preventDefault();
    });
  });

  document.querySelectorAll(".zoom button").forEach(function (b) {
    b.addEventListener("click", function () { setZoom(+b.dataset.zoom); });
  });

  if (window.ResizeObserver) {
    new ResizeObserver(layoutAll).observe(document.body);
  } else {
    window.addEventListener("resize", layoutAll);
  }
  layoutAll();

  // Sortable tables: a header's button sorts by its column's data-value, then reverses.
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    heads.forEach(function (th, col) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        var numeric = button.dataset.type === "num";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
          var d;
          if (numeric) {
            x = x === "" ? Infinity : +x;
            y = y === "" ? Infinity : +y;
            d = x - y;
          } else {
            d = x.localeCompare(y);
          }
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Palette swatches: a click copies the hex code.
  var toast = document.getElementById("toast");
  var toastTimer = 0;
  function say(text) {
    toast.textContent = text;
    toast.classList.add("shown");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.classList.remove("shown"); }, 1600);
  }
  function copyByHand(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    area.remove();
    return ok;
  }
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return copyByHand(text); });
    }
    return Promise.resolve(copyByHand(text));
  }
  document.addEventListener("click", function (e) {
    var swatch = e.target.closest ? e.target.closest(".swatch") : null;
    if (!swatch) return;
    var hex = swatch.dataset.hex;
    copy(hex).then(function (ok) {
      say(ok ? "Copied " + hex : hex + " (copying is not allowed here)");
    });
  });
})();
