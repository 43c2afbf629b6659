// The event editor: plugin parameters, targets, and the trigger / limit / action lists, sent as
// one event to create_event or update_event. The API validates; its first complaint is shown
// next to the section it is about (and on the row and control it names, where it names one),
// and the trigger preview asks the scheduler as you type. Action and scheduler plugin rows
// draw their plugin's parameters from per-plugin <template>s rendered on the server.

import { call } from '../api.js';
import { el, flash } from '../dom.js';
import { actionSpec, LIMITS, scheduleWords, TRIGGERS } from './event_rows.js';
import { paramByTitle, readParams } from './params.js';
import { RowList } from './rows.js';

const form = document.getElementById('event-form');
const data = JSON.parse(document.getElementById('editor-data').textContent);
const context = { lists: data.lists, timezone: data.timezone };
const PREVIEW_COUNT = 5;
const PREVIEW_DELAY_MS = 350;

const lists = {
  trigger: new RowList(document.getElementById('trigger-list'), TRIGGERS, data.triggers, context),
  limit: new RowList(document.getElementById('limit-list'), LIMITS, data.limits, context),
  action: new RowList(document.getElementById('action-list'), actionSpec(context), data.actions, context),
};

// -- adding rows ------------------------------------------------------------------------------

function fillAddSelects() {
  for (const select of document.querySelectorAll('[data-add-select]')) {
    const { spec } = lists[select.dataset.addSelect];
    select.replaceChildren(...Object.entries(spec.types).map(([value, t]) => el('option', { value }, t.label)));
  }
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-add-row]');
  if (!button) return;
  const kind = button.dataset.addRow;
  lists[kind].add(document.querySelector(`[data-add-select="${kind}"]`).value);
});

// -- plugin parameters and targets ------------------------------------------------------------

const pluginSelect = form.querySelector('[data-plugin-select]');

function showPluginParams() {
  for (const set of form.querySelectorAll('.param-set')) set.hidden = set.dataset.plugin !== pluginSelect.value;
}

function readEventParams() {
  const set = [...form.querySelectorAll('.param-set')].find((s) => s.dataset.plugin === pluginSelect.value);
  return readParams(set);
}

function readTargets() {
  const picked = [...form.querySelectorAll('[data-target]:checked')].map((box) => box.value);
  const other = form.querySelector('[data-other-targets]').value.split(',').map((t) => t.trim()).filter(Boolean);
  return [...new Set([...picked, ...other])];
}

function collect() {
  const event = {
    triggers: lists.trigger.read(),
    limits: lists.limit.read(),
    actions: lists.action.read(),
  };
  if (!form.dataset.workflow) {
    event.params = readEventParams();
    event.targets = readTargets();
  }
  return event;
}

// -- errors next to their section -------------------------------------------------------------

const SECTION_RULES = [
  [/^Malformed action/i, 'actions'], [/^Malformed limit/i, 'limits'],
  [/trigger entry #(\d+)/i, 'triggers'], [/trigger|Only one .* rule|mutually exclusive/i, 'triggers'],
  [/limit/i, 'limits'], [/action/i, 'actions'], [/target|algo/i, 'targets'],
  [/param|plugin|JSON/i, 'plugin'],
];

function clearErrors() {
  for (const box of form.querySelectorAll('.section-error')) box.hidden = true;
  for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  for (const list of Object.values(lists)) list.clearInvalid();
}

function fieldByTitle(message) {
  for (const input of form.querySelectorAll('.param-set:not([hidden]) [data-param]')) {
    const title = input.dataset.title;
    if (title && message.endsWith(`: ${title}`)) return input;
  }
  return null;
}

function markRow(message) {
  const entry = /(trigger|action|limit) entry #(\d+)/i.exec(message);
  if (entry) {
    const list = lists[entry[1].toLowerCase()];
    const index = Number(entry[2]) - 1;
    const row = list.rows[index];
    list.markInvalid(index, row ? paramByTitle(row.node, message) : null);
    return true;
  }
  return false;
}

function showSectionError(message, field = null) {
  const rule = SECTION_RULES.find(([pattern]) => pattern.test(message));
  const section = field?.closest('[data-section]') || (rule && form.querySelector(`[data-section="${rule[1]}"]`));
  if (!section) return;
  const box = section.querySelector('.section-error');
  box.textContent = message;
  box.hidden = false;
  const target = field || (section.dataset.section === 'plugin' ? fieldByTitle(message) : null);
  if (!field && markRow(message)) {
    // the row (and its control) is marked and focused
  } else if (target) {
    target.setAttribute('aria-invalid', 'true');
    target.focus();
  } else {
    section.scrollIntoView({ block: 'start' });
  }
}

function showFormError(message) {
  const box = form.querySelector('.form-error');
  box.textContent = message;
  box.hidden = !message;
}

form.addEventListener('api:submit', (event) => {
  clearErrors();
  try {
    Object.assign(event.detail.params, collect());
  } catch (error) {
    event.preventDefault();
    showFormError(error.message);
    showSectionError(error.message, error.field || null);
  }
});

form.addEventListener('api:error', (event) => showSectionError(event.detail.error.message));

// A crontab row was sent as `crontab` on a schedule trigger; the API stored it as the schedule's
// lists. Say what it became, in the words the row will show after the reload.
function crontabNotes(sent, saved) {
  return (sent || []).flatMap((trigger, index) => {
    const stored = saved?.[index];
    if (trigger?.crontab === undefined || !stored) return [];
    return [`Crontab “${trigger.crontab}” saved as a schedule: ${scheduleWords(stored, data.timezone)}.`];
  });
}

form.addEventListener('api:success', (event) => {
  const saved = event.detail.data.event;
  const notes = crontabNotes(event.detail.params.triggers, saved?.triggers);
  const done = form.dataset.verb === 'create_event' ? 'Event created.' : 'Event saved.';
  form.dataset.flash = [done, ...notes].join(' ');
  if (form.dataset.verb !== 'create_event' || !saved) return;
  event.preventDefault();
  flash(form.dataset.flash);
  window.location.assign(`/events/${encodeURIComponent(saved.id)}`);
});

// -- next runs preview ------------------------------------------------------------------------

const preview = document.getElementById('trigger-preview');
const previewStatus = preview.querySelector('[data-preview-status]');
const previewList = preview.querySelector('[data-preview-list]');
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
let previewTimer = 0;
let previewSeq = 0;

function fromNow(epoch) {
  const seconds = epoch - Date.now() / 1000;
  const [unit, size] = [['day', 86400], ['hour', 3600], ['minute', 60]].find(([, s]) => Math.abs(seconds) >= s)
    || ['second', 1];
  return relative.format(Math.round(seconds / size), unit);
}

function runItem(row) {
  const when = new Date(row.now * 1000);
  const text = when.toLocaleString(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: row.now % 60 ? '2-digit' : undefined });
  const trigger = TRIGGERS.types[row.type]?.label || row.type;
  const delayed = row.start > row.now ? `, starts ${fromNow(row.start)}` : '';
  const approval = row.plugin ? ', if the scheduler plugin approves' : '';
  return el('li', {}, el('time', { datetime: when.toISOString() }, text),
    el('span', { class: 'muted' }, ` ${fromNow(row.now)} · ${trigger.toLowerCase()}${delayed}${approval}`));
}

function previewNotes(reply) {
  const notes = [];
  if (!form.querySelector('[name=enabled]').checked) notes.push('The event is disabled, so none of these will start.');
  else if (reply.runs === false) notes.push('Its category or plugin is disabled, so none of these will start.');
  if (reply.scheduler_enabled === false) notes.push('The scheduler is paused; nothing scheduled starts until it is resumed.');
  return notes;
}

async function refreshPreview() {
  const seq = (previewSeq += 1);
  let triggers;
  try {
    triggers = lists.trigger.read();
  } catch (error) {
    previewStatus.textContent = error.message;
    previewList.replaceChildren();
    return;
  }
  const params = { triggers, count: PREVIEW_COUNT };
  if (data.event_id) params.id = data.event_id;
  try {
    const reply = await call('get_event_schedule', params);
    if (seq !== previewSeq) return;
    const rows = reply.rows || [];
    previewList.replaceChildren(...rows.map(runItem));
    const base = rows.length ? `The next ${rows.length} scheduled runs (times in your browser’s zone):`
      : 'No scheduled runs: this event starts only on demand.';
    previewStatus.textContent = [base, ...previewNotes(reply)].join(' ');
    preview.classList.remove('invalid');
  } catch (error) {
    if (seq !== previewSeq) return;
    previewList.replaceChildren();
    previewStatus.textContent = error.message;
    preview.classList.toggle('invalid', error.code === 'api');
  }
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(refreshPreview, PREVIEW_DELAY_MS);
}

fillAddSelects();
if (pluginSelect) pluginSelect.addEventListener('change', showPluginParams);
lists.trigger.onChange(schedulePreview);
form.querySelector('[name=enabled]').addEventListener('change', schedulePreview);
refreshPreview();
