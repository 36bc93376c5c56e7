// Sample grid: rows = prompts, columns = epochs. Arrow keys move the selection, the detail panel
// shows the selected sample larger with its per-image scores. Data comes from the JSON block
// #grid-data written by orchestrator/evaluate/_report.py (no network, no library).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("grid-data").textContent);
  const wrap = document.getElementById("grid-wrap");
  const detail = document.getElementById("detail");
  const table = document.createElement("table");
  table.className = "grid";
  table.id = "sample-grid";
  table.style.setProperty("--thumb", data.thumb + "px");
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th")).textContent = "prompt \\ epoch";
  data.epochs.forEach(function (epoch) {
    const th = document.createElement("th");
    th.textContent = "e" + epoch + (epoch === data.best ? " \u2605" : "");
    if (epoch === data.best) th.className = "best-col";
    head.appendChild(th);
  });
  const body = table.createTBody();
  const cells = [];
  data.prompts.forEach(function (prompt, row) {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.className = "prompt";
    th.textContent = prompt.index + ": " + prompt.text;
    tr.appendChild(th);
    cells.push([]);
    data.epochs.forEach(function (epoch, col) {
      const td = tr.insertCell();
      const cell = data.cells[epoch + ":" + prompt.index];
      td.dataset.row = row;
      td.dataset.col = col;
      if (epoch === data.best) td.classList.add("best-col");
      if (cell && cell.src) {
        const img = document.createElement("img");
        img.src = cell.src;
        img.alt = "epoch " + epoch + ", prompt " + prompt.index;
        td.appendChild(img);
        if (cell.identity !== null && cell.identity !== undefined) {
          const badge = document.createElement("span");
          badge.className = "badge";
          badge.textContent = cell.identity.toFixed(2);
          td.appendChild(badge);
        }
        if (cell.flags && cell.flags.length) {
          const flag = document.createElement("span");
          flag.className = "flag";
          flag.textContent = cell.flags.join(",");
          td.appendChild(flag);
        }
      } else {
        td.textContent = cell ? "unreadable" : "\u2014";
      }
      td.addEventListener("click", function () { select(row, col); });
      cells[row].push(td);
    });
  });
  wrap.appendChild(table);

  let current = null;
  function select(row, col) {
    if (!cells.length) return;
    row = Math.max(0, Math.min(cells.length - 1, row));
    col = Math.max(0, Math.min(data.epochs.length - 1, col));
    if (current) current.classList.remove("selected");
    current = cells[row][col];
    current.classList.add("selected");
    current.scrollIntoView({ block: "nearest", inline: "nearest" });
    const epoch = data.epochs[col];
    const prompt = data.prompts[row];
    const cell = data.cells[epoch + ":" + prompt.index];
    detail.textContent = "";
    if (cell && cell.src) {
      const img = document.createElement("img");
      img.src = cell.src;
      detail.appendChild(img);
    }
    const pre = document.createElement("pre");
    pre.textContent = "epoch " + epoch + " \u00b7 prompt " + prompt.index + "\n" + prompt.text + "\n\n" +
      (cell ? cell.details : "no sample");
    detail.appendChild(pre);
  }
  document.addEventListener("keydown", function (event) {
    if (!current) return;
    const row = Number(current.dataset.row), col = Number(current.dataset.col);
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    select(row + move[0], col + move[1]);
  });
  const bestCol = data.epochs.indexOf(data.best);
  select(0, bestCol >= 0 ? bestCol : 0);
  document.body.dataset.gridReady = String(data.prompts.length * data.epochs.length);
})();
