"use strict";
// bngraph report: a node's click shows its equations; an edge's hover its local partial; a toggle
// switches a graph between its named and staged views. No library: the page must open from disk.
(function () {
  // about: a node's names, "xhat xhat_2": the family the equations for every m use, the node at m
  function select(about) {
    function any(what) {
      return about.split(" ").map(function (n) { return what + '[data-about~="' + n + '"]'; }).join(", ");
    }
    document.querySelectorAll(".highlight, .selected").forEach(function (e) {
      e.classList.remove("highlight", "selected");
    });
    document.querySelectorAll(any("g.node")).forEach(function (g) { g.classList.add("selected"); });
    var eqs = document.querySelectorAll(any("tbody.eq"));
    eqs.forEach(function (e) { e.classList.add("highlight"); });
    if (eqs.length) { eqs[0].scrollIntoView({ block: "start" }); }
  }
  document.querySelectorAll("g.node[data-about]").forEach(function (g) {
    g.addEventListener("click", function () { select(g.dataset.about); });
    g.addEventListener("keydown", function (e) { if (e.key === "Enter") { select(g.dataset.about); } });
  });

  var tip = document.getElementById("tip");
  document.querySelectorAll("g.edge[data-partial]").forEach(function (g) {
    g.addEventListener("mouseenter", function () {
      tip.replaceChildren(document.getElementById(g.dataset.partial).cloneNode(true));
      tip.querySelectorAll("[id]").forEach(function (e) { e.removeAttribute("id"); });  // ids stay unique
      tip.hidden = false;
    });
    g.addEventListener("mousemove", function (e) {
      tip.style.left = e.clientX + 14 + "px";
      tip.style.top = e.clientY + 14 + "px";
    });
    g.addEventListener("mouseleave", function () { tip.hidden = true; });
  });

  document.querySelectorAll(".views").forEach(function (group) {
    group.querySelectorAll("button").forEach(function (button) {
      button.addEventListener("click", function () {
        var view = button.dataset.view;
        group.querySelectorAll("button").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
        group.parentElement.querySelectorAll("figure.view").forEach(function (f) {
          f.hidden = f.dataset.view !== view;
        });
      });
    });
  });
})();
