"""The Review tab's keyboard shortcuts: which key clicks which button, and the page script that binds them."""

from __future__ import annotations

import json

__all__ = ["SHORTCUTS", "shortcuts_js"]

#: keyboard shortcuts: key -> elem_id of the button it clicks (or the box it focuses)
SHORTCUTS = {"a": "review-choose-a", "b": "review-choose-b", "t": "review-tie", "y": "review-accept",
             "r": "review-reject", "s": "review-skip", "f": "review-flag", "e": "review-edit-text"}
#: shortcut targets inside a closed accordion (Gradio renders them only once it is open) -> the accordion
_FOLDED = {"review-edit-text": "review-edit-accordion"}


def shortcuts_js() -> str:
    """Browser code binding the keys of :data:`SHORTCUTS` to the review buttons (run once on page load)."""
    return """() => {
  if (window.__hubtoolsShortcuts) return;
  window.__hubtoolsShortcuts = true;
  const keys = KEYS;
  const folded = FOLDED;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const id = keys[event.key.toLowerCase()];
    const el = id && document.getElementById(id);
    const fold = id && folded[id] && (!el || el.offsetParent === null) && document.getElementById(folded[id]);
    if (fold && fold.offsetParent !== null) {  // in a closed accordion (maybe not rendered yet): open it, then focus
      event.preventDefault();
      fold.querySelector("button")?.click();
      let frames = 0;
      const focus = () => {
        const box = document.querySelector(`#${id} textarea`);
        if (box) box.focus(); else if (frames++ < 60) requestAnimationFrame(focus);
      };
      requestAnimationFrame(focus);
      return;
    }
    if (!el || el.offsetParent === null) return;  // not on screen: another tab, or not for this kind
    event.preventDefault();
    const box = el.querySelector("textarea");
    if (box) { box.focus(); return; }
    (el.tagName === "BUTTON" ? el : el.querySelector("button"))?.click();
  });
}""".replace("KEYS", json.dumps(SHORTCUTS)).replace("FOLDED", json.dumps(_FOLDED))
