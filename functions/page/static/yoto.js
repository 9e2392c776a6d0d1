// The Yoto account: sign in (authorization code, through Yoto's own page), disconnect.

import { api } from './api.js';
import { $, say, whileBusy } from './dom.js';

let state;
let signIn;
let disconnect;
let redirect;
let redirectBox;
let status;

function show(login) {
  if (login.signed_in) state.textContent = 'Connected to your Yoto account: queues can be put on cards.';
  else if (login.pending) state.textContent = 'A Yoto sign-in is under way.';
  else state.textContent = 'Not connected to a Yoto account yet.';
  signIn.hidden = Boolean(login.signed_in);
  disconnect.hidden = !login.signed_in;
  redirect.textContent = login.redirect_uri || '';
  redirectBox.hidden = !login.redirect_uri;
}

export async function refresh() {
  try {
    show(await api.get('/api/yoto/login'));
  } catch (error) {
    state.textContent = 'The Yoto sign-in status is not known.';
    say(status, error.message, 'error');
  }
}

function startSignIn() {
  say(status, 'Opening Yoto’s sign-in…');
  return whileBusy(signIn, async () => {
    try {
      const { authorize_url: url } = await api.post('/api/yoto/authorize');
      if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) {
        throw new Error('The server gave no sign-in address.');
      }
      location.assign(url);
    } catch (error) {
      say(status, error.message, 'error');
    }
  });
}

function forget() {
  return whileBusy(disconnect, async () => {
    try {
      await api.del('/api/yoto/login');
      say(status, 'Disconnected from Yoto.', 'ok');
      await refresh();
    } catch (error) {
      say(status, error.message, 'error');
    }
  });
}

export function init() {
  state = $('#yoto-state');
  signIn = $('#yoto-sign-in');
  disconnect = $('#yoto-disconnect');
  redirect = $('#yoto-redirect');
  redirectBox = $('#yoto-redirect-box');
  status = $('#yoto-status');
  signIn.addEventListener('click', startSignIn);
  disconnect.addEventListener('click', forget);
}

export function start() {
  refresh();
}

export function stop() {
  say(status, '');
}
