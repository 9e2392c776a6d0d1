// Wiring: sign-in from the address's fragment, signed-in and signed-out states, sections.

import { onUnauthorized, token, TOKEN_KEY } from './api.js';
import { $, say } from './dom.js';
import * as library from './library.js';
import * as queues from './queues.js';
import * as record from './record.js';
import * as story from './story.js';
import * as upload from './upload.js';
import * as yoto from './yoto.js';

const sections = [library, upload, record, story, queues, yoto];
let signedIn = false;

/** Take the token and Yoto's answer out of the fragment (and the fragment out of the
 * address bar, so the token is not left in history or shared by copying the address).
 * Returns whether a token was given. */
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has('token') && !params.has('yoto')) return false;
  const given = (params.get('token') || '').trim();
  if (given) token.set(given);
  if (params.get('yoto') === 'signed-in') say($('#notice'), 'Signed in to Yoto.', 'ok');
  else if (params.get('yoto') === 'error') {
    say($('#notice'), `Yoto sign-in failed: ${params.get('reason') || 'no reason given'}.`, 'error');
  }
  history.replaceState(null, '', location.pathname + location.search);
  return Boolean(given);
}

function showSignedOut(message, kind = 'info') {
  const wasIn = signedIn;
  signedIn = false;
  $('#app').hidden = true;
  $('#nav').hidden = true;
  $('#sign-out').hidden = true;
  $('#signed-out').hidden = false;
  say($('#signed-out-status'), message, kind);
  if (wasIn) for (const section of sections) section.stop?.();
}

function showSignedIn() {
  signedIn = true;
  $('#signed-out').hidden = true;
  $('#app').hidden = false;
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  for (const section of sections) section.start?.();
}

function main() {
  for (const section of sections) section.init();
  readFragment();
  onUnauthorized(() => {
    if (!signedIn) return;
    token.clear();
    showSignedOut(
      'That sign-in link is not valid (wrong or old token). Open the link that make dev prints again.',
      'error',
    );
  });

  $('#sign-out').addEventListener('click', () => {
    token.clear();
    showSignedOut('Signed out. Open the sign-in link again to come back.', 'ok');
    $('#signed-out-heading').focus();
  });

  // Signed out in another tab: follow it here.
  window.addEventListener('storage', (event) => {
    if (event.key === null || event.key === TOKEN_KEY) {
      if (!token.get() && signedIn) showSignedOut('Signed out in another tab.');
      else if (token.get() && !signedIn) showSignedIn();
    }
  });

  // The sign-in link pasted into this tab changes only the fragment: no new page load.
  window.addEventListener('hashchange', () => {
    if (readFragment()) showSignedIn();
    else if (!token.get() && signedIn) showSignedOut('');
  });

  if (token.get()) showSignedIn();
  else showSignedOut('');
}

main();
