// Small DOM helpers. Text from the server reaches the page through textContent only,
// never as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function show(value) {
  return value === null || value === undefined || value === "" ? "-" : String(value);
}

// One table row spanning every column, for "nothing here" and "loading".
export function noteRow(columns, text) {
  return el("tr", {}, [el("td", { colspan: String(columns), class: "muted", text })]);
}

// Times on the wire are seconds since the epoch as decimal strings ("1795561868.044").
export function dateOf(seconds) {
  if (seconds === null || seconds === undefined || seconds === "") return null;
  const date = new Date(Number(seconds) * 1000);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function clockTime(seconds) {
  const date = dateOf(seconds);
  return date ? date.toLocaleTimeString([], { hour12: false }) : "-";
}

export function dateTime(seconds) {
  const date = dateOf(seconds);
  return date ? date.toLocaleString([], { hour12: false }) : "-";
}

// A status line: text and a kind (ok, error, or "" for neutral).
export function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("ok", kind === "ok");
  node.classList.toggle("error", kind === "error");
}

// Tabs: buttons with data-NAME inside `list`; calls onSelect(value) when one is picked.
export function tabs(list, name, onSelect) {
  const buttons = [...list.querySelectorAll(`[data-${name}]`)];
  const select = (value) => {
    for (const button of buttons) {
      button.setAttribute("aria-selected", String(button.dataset[name] === value));
    }
    onSelect(value);
  };
  for (const button of buttons) {
    button.addEventListener("click", () => select(button.dataset[name]));
  }
  return select;
}
