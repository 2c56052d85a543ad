"""A 3D view of a plan for a web page: rotate (drag) and zoom (wheel) in any browser with WebGL,
offline and self-contained (the meshes inline as base64, the viewer a short WebGL script of this
module, no library and no network).

What is drawn matches the still scene (:mod:`bvn_plan.viz.scene`, same colours): the bone, its
safety zones (endplates, posterior wall), the canal, the instrument (introducer and cannula) and
the lesion, translucent where they would hide the instrument. Coordinates are mm, model
coordinates, turned into the vertebra frame (right, anterior, superior) so superior is up and the
first view is the scene's oblique one; an orientation marker (R/A/S in the scene's colours) turns
with the view.

    html = viewer_block(vertebra, landmarks, ScenePlan([plan.path], [plan.lesion]), "L4")
    page = f"<html><body>{html}{VIEWER_SCRIPT}</body></html>"
"""

from __future__ import annotations

import base64
import html
import json
from typing import Sequence

import numpy as np
import trimesh

from ..landmarks import Landmarks
from .scene import (BONE_COLOUR, CANAL_COLOUR, LESION_COLOUR, ZONE_COLOURS, ScenePlan, _checked_anatomy, bone_and_zones,
                    instrument_parts)

#: Canvas size (CSS pixels) of one view.
VIEW_SIZE_PX = (520, 400)
#: Opacity of the bone and of the zones when an instrument or lesion is drawn (as the scene's
#: transparent view), of the canal and of the lesion.
BONE_OPACITY = 0.5
ZONE_OPACITY = 0.55
CANAL_OPACITY = 0.35
LESION_OPACITY = 0.45
#: Background of the view (RGB 0-255): dark slate, as 3D Slicer's, so the pale bone stands out.
BACKGROUND = (38, 42, 50)
#: Sections around an instrument tube.
TUBE_SECTIONS = 16


def view_parts(vertebra, landmarks: Landmarks, plan: ScenePlan = ScenePlan()) -> list[dict]:
    """The surfaces of the view: name, triangles (mm, vertebra frame: right, anterior, superior,
    origin at the frame's origin), colour (hex) and opacity."""
    from ..workflow.slicer_export import path_tube  # the one tube builder

    mesh = _checked_anatomy(vertebra, landmarks)
    see_through = bool(plan.paths or plan.lesions)
    bone, zones = bone_and_zones(mesh, landmarks)
    parts = [("vertebra", bone, BONE_COLOUR, BONE_OPACITY if see_through else 1.0)]
    parts += [(name, zone, ZONE_COLOURS[name], ZONE_OPACITY if see_through else 1.0) for name, zone in zones.items()]
    if landmarks.canal_mesh is not None:
        parts.append(("canal", landmarks.canal_mesh, CANAL_COLOUR, CANAL_OPACITY))
    for i, path in enumerate(plan.paths):
        radius = max(path.radius_mm, 0.2)  # a zero-radius guide wire still shows
        parts += [(f"{name} {i}", path_tube(points, radius, TUBE_SECTIONS), colour, 1.0)
                  for name, points, colour in instrument_parts(path)]
    for i, lesion in enumerate(plan.lesions):
        parts.append((f"lesion {i}", lesion.surface_mesh(), LESION_COLOUR, LESION_OPACITY))
    frame = landmarks.frame
    return [{"name": name, "mesh": trimesh.Trimesh(frame.to_local(part.vertices), part.faces, process=False),
             "colour": colour, "opacity": opacity} for name, part, colour, opacity in parts]


def viewer_block(vertebra, landmarks: Landmarks, plan: ScenePlan = ScenePlan(), title: str = "") -> str:
    """An HTML block (a canvas with its data) showing :func:`view_parts`; the page needs
    :data:`VIEWER_SCRIPT` once, after the blocks."""
    data = {"parts": [_encode(part) for part in view_parts(vertebra, landmarks, plan)], "background": BACKGROUND}
    width, height = VIEW_SIZE_PX
    return (f"<figure class='bvn-3d'><canvas width='{width}' height='{height}' title='{html.escape(title)}' "
            f"data-scene='{html.escape(json.dumps(data), quote=True)}'></canvas>"
            f"<figcaption><small>{html.escape(title)}: 3D view, drag to rotate, wheel to zoom "
            "(R red, A green, S blue)</small></figcaption></figure>")


def _encode(part: dict) -> dict:
    mesh = part["mesh"]
    normals = np.asarray(mesh.vertex_normals, np.float32)
    return {"name": part["name"], "colour": part["colour"], "opacity": part["opacity"],
            "positions": _b64(np.asarray(mesh.vertices, np.float32)), "normals": _b64(normals),
            "indices": _b64(np.asarray(mesh.faces, np.uint32))}


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def page(blocks: Sequence[str], title: str = "bvn-plan 3D view") -> str:
    """A whole page of viewer blocks (e.g. to look at one view alone)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            + "".join(blocks) + VIEWER_SCRIPT + "</body></html>")


#: The viewer (WebGL 1, no library): every canvas with a ``data-scene`` becomes a view; drag
#: rotates about the vertebra frame's origin, the wheel zooms; opaque parts first, then the
#: translucent ones without depth writes.
VIEWER_SCRIPT = """<script>
(function () {
  function decode(text, Type) {
    var bytes = Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); });
    return new Type(bytes.buffer);
  }
  function colour(hex) {
    return [1, 3, 5].map(function (i) { return parseInt(hex.substr(i, 2), 16) / 255; });
  }
  var VS = "attribute vec3 p; attribute vec3 n; uniform mat4 m; uniform float s; uniform float r; uniform vec2 o;" +
    "varying vec3 vn; void main() { vec4 q = m * vec4(p, 1.0); vn = (m * vec4(n, 0.0)).xyz;" +
    "gl_Position = vec4(q.x * s / r + o.x, q.y * s + o.y, -q.z * 0.004, 1.0); }";
  var FS = "precision mediump float; uniform vec3 c; uniform float a; uniform float e; varying vec3 vn;" +
    "void main() { float l = e > 0.5 ? 1.0 : 0.25 + 0.75 * abs(normalize(vn).z); gl_FragColor = vec4(c * l, a); }";
  function shader(gl, type, source) {
    var s = gl.createShader(type); gl.shaderSource(s, source); gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) { throw new Error("bvn-plan 3D view: " + gl.getShaderInfoLog(s)); }
    return s;
  }
  function rotation(yaw, pitch) {  // model (right, anterior, superior) -> view (x right, y up, z toward the viewer)
    var cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    // yaw about superior, then pitch about the view's x axis; at 0, 0 the view looks from anterior
    var r = [[-cy, sy, 0], [0, 0, 1], [sy, cy, 0]];
    var t = [r[0], [cp * r[1][0] - sp * r[2][0], cp * r[1][1] - sp * r[2][1], cp * r[1][2] - sp * r[2][2]],
             [sp * r[1][0] + cp * r[2][0], sp * r[1][1] + cp * r[2][1], sp * r[1][2] + cp * r[2][2]]];
    return [t[0][0], t[1][0], t[2][0], 0, t[0][1], t[1][1], t[2][1], 0, t[0][2], t[1][2], t[2][2], 0, 0, 0, 0, 1];
  }
  function view(canvas) {
    var scene = JSON.parse(canvas.getAttribute("data-scene"));
    var gl = canvas.getContext("webgl", {preserveDrawingBuffer: true, antialias: true});
    if (!gl) { canvas.insertAdjacentText("afterend", " (this browser has no WebGL: no 3D view)"); return; }
    gl.getExtension("OES_element_index_uint");
    var program = gl.createProgram();
    gl.attachShader(program, shader(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(program, shader(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) { throw new Error("bvn-plan 3D view: " + gl.getProgramInfoLog(program)); }
    gl.useProgram(program);
    var at = {p: gl.getAttribLocation(program, "p"), n: gl.getAttribLocation(program, "n")};
    var un = {m: gl.getUniformLocation(program, "m"), s: gl.getUniformLocation(program, "s"),
              c: gl.getUniformLocation(program, "c"), a: gl.getUniformLocation(program, "a"),
              r: gl.getUniformLocation(program, "r"), o: gl.getUniformLocation(program, "o"),
              e: gl.getUniformLocation(program, "e")};
    function buffer(target, data) {
      var b = gl.createBuffer(); gl.bindBuffer(target, b); gl.bufferData(target, data, gl.STATIC_DRAW); return b;
    }
    var reach = 1;
    var parts = scene.parts.map(function (part) {
      var positions = decode(part.positions, Float32Array);
      for (var i = 0; i < positions.length; i++) { reach = Math.max(reach, Math.abs(positions[i])); }
      var indices = decode(part.indices, Uint32Array);
      return {p: buffer(gl.ARRAY_BUFFER, positions), n: buffer(gl.ARRAY_BUFFER, decode(part.normals, Float32Array)),
              i: buffer(gl.ELEMENT_ARRAY_BUFFER, indices), count: indices.length, c: colour(part.colour),
              a: part.opacity};
    });
    var axes = [[1, 0, 0, "#c81e1e"], [0, 1, 0, "#149628"], [0, 0, 1, "#1e46d2"]].map(function (axis) {
      return {p: buffer(gl.ARRAY_BUFFER, new Float32Array([0, 0, 0, axis[0], axis[1], axis[2]])),
              n: buffer(gl.ARRAY_BUFFER, new Float32Array(6)), c: colour(axis[3])};
    });
    var state = {yaw: 0.675, pitch: 0.45, zoom: 1.3};
    function draw() {
      var bg = scene.background;
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(bg[0] / 255, bg[1] / 255, bg[2] / 255, 1); gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST); gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      var m = rotation(state.yaw, state.pitch);
      var aspect = canvas.width / canvas.height;
      gl.uniformMatrix4fv(un.m, false, new Float32Array(m));
      gl.uniform1f(un.r, aspect); gl.uniform2f(un.o, 0, 0);
      gl.uniform1f(un.s, state.zoom / (1.1 * reach));
      var order = parts.filter(function (q) { return q.a >= 1; }).concat(parts.filter(function (q) { return q.a < 1; }));
      order.forEach(function (q) {
        gl.depthMask(q.a >= 1);
        gl.bindBuffer(gl.ARRAY_BUFFER, q.p); gl.vertexAttribPointer(at.p, 3, gl.FLOAT, false, 0, 0);
        gl.enableVertexAttribArray(at.p);
        gl.bindBuffer(gl.ARRAY_BUFFER, q.n); gl.vertexAttribPointer(at.n, 3, gl.FLOAT, false, 0, 0);
        gl.enableVertexAttribArray(at.n);
        gl.uniform3fv(un.c, q.c); gl.uniform1f(un.a, q.a); gl.uniform1f(un.e, 0);
        gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, q.i); gl.drawElements(gl.TRIANGLES, q.count, gl.UNSIGNED_INT, 0);
      });
      gl.depthMask(true); gl.disable(gl.DEPTH_TEST);
      gl.uniform1f(un.s, 0.15); gl.uniform2f(un.o, -0.8, -0.75);  // the orientation marker, bottom left
      axes.forEach(function (q) {
        gl.bindBuffer(gl.ARRAY_BUFFER, q.p); gl.vertexAttribPointer(at.p, 3, gl.FLOAT, false, 0, 0);
        gl.bindBuffer(gl.ARRAY_BUFFER, q.n); gl.vertexAttribPointer(at.n, 3, gl.FLOAT, false, 0, 0);
        gl.uniform3fv(un.c, q.c); gl.uniform1f(un.a, 1); gl.uniform1f(un.e, 1);
        gl.drawArrays(gl.LINES, 0, 2);
      });
    }
    var last = null;
    canvas.addEventListener("mousedown", function (e) { last = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", function () { last = null; });
    window.addEventListener("mousemove", function (e) {
      if (!last) { return; }
      state.yaw += 0.01 * (e.clientX - last[0]);
      state.pitch = Math.max(-1.5, Math.min(1.5, state.pitch + 0.01 * (e.clientY - last[1])));
      last = [e.clientX, e.clientY]; draw();
    });
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault(); state.zoom = Math.max(0.3, Math.min(8, state.zoom * Math.exp(-0.001 * e.deltaY))); draw();
    }, {passive: false});
    draw();
  }
  Array.prototype.forEach.call(document.querySelectorAll("canvas[data-scene]"), view);
})();
</script>"""
