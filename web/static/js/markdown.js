// A tiny markdown renderer that builds DOM nodes from text: no HTML string is ever parsed, so markup
// in a task's text shows as the characters typed. Headings, bold, italic, inline and fenced code,
// bullet lists, paragraphs and http(s)/mailto links (opened with rel="noopener noreferrer").

import { externalLink, h } from "./dom.js";

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)|(\[[^\]\n]+\]\([^)\s]+\))|(https?:\/\/[^\s<>()]+)/;

export function renderInline(text, depth = 0) {
  const out = [];
  let rest = String(text);
  while (rest) {
    const match = depth > 3 ? null : INLINE.exec(rest);
    if (!match) {
      out.push(document.createTextNode(rest));
      break;
    }
    if (match.index > 0) out.push(document.createTextNode(rest.slice(0, match.index)));
    const token = match[0];
    if (match[1]) out.push(h("code", {}, token.slice(1, -1)));
    else if (match[2]) out.push(h("strong", {}, renderInline(token.slice(2, -2), depth + 1)));
    else if (match[3]) out.push(h("em", {}, renderInline(token.slice(1, -1), depth + 1)));
    else if (match[4]) {
      const close = token.indexOf("](");
      out.push(externalLink(token.slice(close + 2, -1), token.slice(1, close)));
    } else out.push(externalLink(token, token));
    rest = rest.slice(match.index + token.length);
  }
  return out;
}

export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) fragment.append(h("p", {}, renderInline(paragraph.join(" "))));
    paragraph = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (/^```/.test(line)) {
      flush();
      const code = [];
      for (i += 1; i < lines.length && !/^```/.test(lines[i]); i += 1) code.push(lines[i]);
      fragment.append(h("pre", {}, h("code", {}, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const level = Math.min(6, heading[1].length + 2); // the drawer's own heading is h2
      fragment.append(h(`h${level}`, {}, renderInline(heading[2])));
      continue;
    }
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    if (bullet) {
      if (paragraph.length) flush();
      if (!list) {
        list = h("ul");
        fragment.append(list);
      }
      list.append(h("li", {}, renderInline(bullet[1])));
      continue;
    }
    if (!line.trim()) {
      flush();
      continue;
    }
    list = null;
    paragraph.push(line.trim());
  }
  flush();
  return fragment;
}
