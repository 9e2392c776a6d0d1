// DOM helpers. Text always goes in through text nodes / textContent, never as markup.

let counter = 0;

/** A fresh id for label/for pairs of repeated rows. */
export function uid(prefix = 'id') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/**
 * el('button', {type: 'button', class: 'x', onclick: fn}, 'text', child, ...)
 * Attributes come from code, never from data; children that are not nodes become text.
 * `true` sets a boolean attribute, `false`/null/undefined leaves it out.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'style' || (key.startsWith('on') && typeof value !== 'function')) {
      throw new Error(`el: ${key} is not allowed`);
    }
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`missing element ${selector}`);
  return found;
}

/** Show a message in a status element (role=status, aria-live=polite). */
export function say(target, text, kind = 'info') {
  target.textContent = text || '';
  target.dataset.kind = text ? kind : '';
}

/** A <progress>: a fraction 0–1, or null for indeterminate. */
export function setProgress(progress, fraction) {
  if (typeof fraction === 'number' && Number.isFinite(fraction)) {
    progress.max = 1;
    progress.value = Math.min(1, Math.max(0, fraction));
  } else {
    progress.removeAttribute('value');
  }
}

/**
 * Run `work` with `button` disabled; a button that had the focus gets it back afterwards
 * (disabling a focused button drops the keyboard's place to the top of the page).
 */
export async function whileBusy(button, work) {
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && lost && button.isConnected && !button.hidden) button.focus();
  }
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// One <dialog> answers every question the page asks (instead of window.confirm).
let dialogBusy = Promise.resolve();

/**
 * Ask a yes/no question in the page's dialog; resolves true when `confirmLabel` is chosen
 * (Cancel and Escape answer no). Focus goes back to where it was.
 */
export function ask(question, confirmLabel = 'Confirm') {
  const run = () =>
    new Promise((resolve) => {
      const dialog = $('#ask');
      const yes = $('#ask-yes');
      const no = $('#ask-no');
      const returnTo = document.activeElement;
      $('#ask-text').textContent = question;
      yes.textContent = confirmLabel;
      const answer = (value) => () => dialog.close(value);
      const onYes = answer('yes');
      const onNo = answer('no');
      yes.addEventListener('click', onYes);
      no.addEventListener('click', onNo);
      dialog.addEventListener(
        'close',
        () => {
          yes.removeEventListener('click', onYes);
          no.removeEventListener('click', onNo);
          if (returnTo instanceof HTMLElement && returnTo.isConnected) returnTo.focus();
          resolve(dialog.returnValue === 'yes');
        },
        { once: true },
      );
      dialog.returnValue = '';
      dialog.showModal();
      no.focus();
    });
  dialogBusy = dialogBusy.then(run, run);
  return dialogBusy;
}
