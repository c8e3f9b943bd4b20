/* kpibot dashboard: draws the charts (ECharts, loaded when a page has one) and presses the
   sign-in button of a link page. Pages work without this file; nothing here is inline. */
(function () {
  "use strict";

  var loading = null;

  function loadECharts() {
    if (window.echarts) {
      return Promise.resolve(window.echarts);
    }
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/dashboard/static/echarts.min.js";
        script.onload = function () { resolve(window.echarts); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function numbers(values) {
    return values.map(function (value) { return value === null ? null : Number(value); });
  }

  function option(data) {
    var actual = numbers(data.actual);
    var target = numbers(data.target);
    var marks = data.notes.map(function (note) {
      return { xAxis: note.day, name: note.text, label: { formatter: note.text, show: false } };
    });
    return {
      animation: false,
      grid: { left: 56, right: 16, top: 36, bottom: 28 },
      legend: { data: [data.names.actual, data.names.target], top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.labels },
      yAxis: { type: "value", name: data.currency, nameGap: 12 },
      series: [
        {
          name: data.names.actual,
          type: "bar",
          data: actual.map(function (value, index) {
            var goal = target[index];
            var color = goal === null || value === null ? "#5470c6" : value >= goal ? "#2e9d5b" : "#e4793a";
            return { value: value, itemStyle: { color: color } };
          }),
          markLine: marks.length ? { symbol: "none", data: marks, lineStyle: { type: "dashed", color: "#888" } } : undefined
        },
        {
          name: data.names.target,
          type: "line",
          step: "middle",
          symbol: "none",
          data: target,
          lineStyle: { color: "#c23531", width: 2 }
        }
      ]
    };
  }

  function draw(root) {
    var boxes = (root || document).querySelectorAll(".chart-box");
    if (!boxes.length) {
      return;
    }
    loadECharts().then(function (echarts) {
      boxes.forEach(function (box) {
        var element = box.querySelector(".chart");
        var source = box.querySelector(".chart-data");
        if (!element || !source || element.getAttribute("data-drawn")) {
          return;
        }
        var chart = echarts.init(element, null, { renderer: "canvas" });
        chart.setOption(option(JSON.parse(source.textContent)));
        element.setAttribute("data-drawn", "true");
        window.addEventListener("resize", function () { chart.resize(); });
      });
    });
  }

  function signIn() {
    var form = document.getElementById("continue");
    if (form && form.getAttribute("data-auto") === "true") {
      form.setAttribute("data-auto", "done");
      form.submit();
    }
  }

  function ready() {
    signIn();
    draw(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
