// Building elements without HTML strings: every piece of data becomes a text node or a checked attribute.

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "hidden", "open", "draggable"]);

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (PROPERTIES.has(key)) {
      element[key] = value;
    } else if (key === "href") {
      element.setAttribute("href", safeHref(value) || "#");
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Only http(s) and mailto links leave the page; anything else (javascript:, data:, ...) is refused. */
export function safeHref(url) {
  const text = String(url).trim();
  if (/^mailto:[^\s]+$/i.test(text)) return text;
  try {
    const parsed = new URL(text);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") return parsed.href;
  } catch {
    return null;
  }
  return null;
}

export function externalLink(url, label) {
  const href = safeHref(url);
  if (!href) return document.createTextNode(label);
  const link = document.createElement("a");
  link.href = href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.textContent = label;
  return link;
}

export function ago(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function when(epochSeconds) {
  if (!epochSeconds) return "";
  return ago(Date.now() / 1000 - Number(epochSeconds)) + " ago";
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let toastTimer = null;
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, kind === "error" ? 8000 : 3000);
}

/** A modal yes/no question in the page's own dialog (works the same on phones and in tests). */
export function confirmDialog(question, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  const text = dialog.querySelector("[data-role=question]");
  const yes = dialog.querySelector("[data-role=yes]");
  text.textContent = question;
  yes.textContent = confirmLabel;
  return new Promise((resolve) => {
    const finish = () => {
      dialog.removeEventListener("close", finish);
      resolve(dialog.returnValue === "yes");
    };
    dialog.returnValue = "";
    dialog.addEventListener("close", finish);
    dialog.showModal();
    yes.focus();
  });
}
