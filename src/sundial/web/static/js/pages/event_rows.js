// What an event's triggers, limits and actions look like in the editor, and how each reads in
// plain words. Field names and types follow the Sundial specs (triggers §2, events §8 and §10).

import { MONTHS, WEEKDAYS } from './rows.js';

const UNIT_WORDS = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

export function durationWords(seconds) {
  const value = Number(seconds) || 0;
  if (!value) return '0 seconds';
  const [word, size] = UNIT_WORDS.find(([, s]) => value % s === 0) || ['second', 1];
  const count = value / size;
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export function sizeWords(bytes) {
  let value = Number(bytes) || 0;
  for (const unit of ['bytes', 'KB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${value} GB`;
}

export function whenWords(epoch) {
  if (!epoch) return '…';
  return new Date(Number(epoch) * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

const pad = (n) => String(n).padStart(2, '0');
const list = (items) => (items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : items.join(''));

function timesOfDay(hours, minutes) {
  if (!hours.length && !minutes.length) return 'every minute';
  if (!hours.length) return `every hour at ${list(minutes.map((m) => `:${pad(m)}`))}`;
  if (!minutes.length) return `every minute of ${list(hours.map((h) => `${pad(h)}:xx`))}`;
  if (hours.length * minutes.length <= 6) {
    return `at ${list(hours.flatMap((h) => minutes.map((m) => `${pad(h)}:${pad(m)}`)))}`;
  }
  return `at minutes ${list(minutes.map(String))} of hours ${list(hours.map(String))}`;
}

function daysWords(t) {
  const parts = [];
  if (t.weekdays?.length) parts.push(`on ${list(t.weekdays.map((d) => WEEKDAYS[d] ?? d))}`);
  if (t.days?.length) {
    parts.push(`on day ${list(t.days.map((d) => (d === -1 ? 'last' : d < 0 ? `${-d} from the end` : String(d))))} of the month`);
  }
  if (t.months?.length) parts.push(`in ${list(t.months.map((m) => MONTHS[m - 1] ?? m))}`);
  if (t.years?.length) parts.push(`in ${list(t.years.map(String))}`);
  return parts.length ? parts.join(', ') : 'every day';
}

export function scheduleWords(t, timezone) {
  const times = timesOfDay(t.hours || [], t.minutes || []);
  const days = daysWords(t);
  const text = days === 'every day' ? `Every day, ${times}` : `${days[0].toUpperCase()}${days.slice(1)}, ${times}`;
  return `${text} (${t.timezone || timezone})`;
}

function titleIn(context, listName, id) {
  const found = (context.lists[listName] || []).find(([value]) => value === id);
  return found ? found[1] : (id || '…');
}

function triggerSummary(t, context) {
  switch (t.type) {
    case 'schedule':
      if (t.crontab !== undefined) {
        return `Crontab “${t.crontab || '…'}” (${t.timezone || context.timezone}): saved as a schedule; the next runs below come from it.`;
      }
      return scheduleWords(t, context.timezone);
    case 'interval': return `Every ${durationWords(t.duration)}, counting from ${whenWords(t.start)}`;
    case 'single': return `Once, at ${whenWords(t.epoch)}`;
    case 'manual': return 'On demand: the Run button, the API and other events’ actions may start it.';
    case 'startup': return 'Once each time the conductor starts.';
    case 'catchup': return 'Runs missed while the scheduler was paused or down are made up.';
    case 'nth': return `Only every ${t.every || 'Nth'} scheduled run starts a job.`;
    case 'range':
      if (t.start && t.end) return `Scheduled runs only between ${whenWords(t.start)} and ${whenWords(t.end)}`;
      return t.start ? `Scheduled runs only from ${whenWords(t.start)}` : `Scheduled runs only until ${whenWords(t.end)}`;
    case 'blackout': return `No scheduled runs between ${whenWords(t.start)} and ${whenWords(t.end)}`;
    case 'delay': return `Scheduled jobs start ${durationWords(t.duration)} after their time.`;
    case 'precision': return `At second ${list((t.seconds || []).map(String))} of each scheduled minute`;
    case 'quiet': return `Scheduled jobs are ${[t.invisible && 'hidden', t.ephemeral && 'not kept'].filter(Boolean).join(' and ') || 'quiet'}.`;
    case 'plugin': return `Each scheduled run starts only if the scheduler plugin “${titleIn(context, 'scheduler_plugins', t.plugin_id)}” approves it.`;
    default: return '';
  }
}

export const TRIGGERS = {
  noun: 'Trigger', typeKey: 'type', defaultType: 'schedule', empty: 'No triggers: the event only runs as a test.',
  summary: triggerSummary,
  types: {
    manual: { label: 'On demand (manual)', fields: [] },
    schedule: { label: 'Schedule', defaults: { hours: [0], minutes: [0] }, fields: [
      { key: 'minutes', control: 'numlist', label: 'Minutes (0–59)', help: 'Empty means every minute.' },
      { key: 'hours', control: 'numlist', label: 'Hours (0–23)', help: 'Empty means every hour.' },
      { key: 'weekdays', control: 'weekdays', label: 'Weekdays (none = any)' },
      { key: 'days', control: 'numlist', label: 'Days of the month', help: '1–31; -1 is the last day.' },
      { key: 'months', control: 'months', label: 'Months (none = any)' },
      { key: 'years', control: 'numlist', label: 'Years', help: 'Empty means every year.' },
      { key: 'timezone', control: 'text', label: 'Time zone', placeholder: 'Default', help: 'IANA name, e.g. Europe/Berlin.' },
    ] },
    // An input form only: the API turns the expression into a schedule's lists when it saves.
    crontab: { label: 'Crontab expression', saveAs: 'schedule', defaults: { crontab: '0 * * * *' }, fields: [
      { key: 'crontab', control: 'text', label: 'Crontab', placeholder: '*/15 9-17 * * mon-fri', mono: true, keepEmpty: true,
        help: 'Minute, hour, day of month, month, weekday. Saved as a schedule.' },
      { key: 'timezone', control: 'text', label: 'Time zone', placeholder: 'Default', help: 'IANA name, e.g. Europe/Berlin.' },
    ] },
    interval: { label: 'Interval', defaults: { duration: 3600, start: Math.floor(Date.now() / 60000) * 60 }, fields: [
      { key: 'duration', control: 'duration', label: 'Every' },
      { key: 'start', control: 'datetime', label: 'Counting from' },
    ] },
    single: { label: 'Once', fields: [{ key: 'epoch', control: 'datetime', label: 'At' }] },
    startup: { label: 'At conductor start-up', fields: [] },
    range: { label: 'Only between (range)', fields: [
      { key: 'start', control: 'datetime', label: 'From', help: 'Optional.' },
      { key: 'end', control: 'datetime', label: 'Until', help: 'Optional.' },
    ] },
    blackout: { label: 'Never between (blackout)', fields: [
      { key: 'start', control: 'datetime', label: 'From' },
      { key: 'end', control: 'datetime', label: 'Until' },
    ] },
    precision: { label: 'Precise seconds', defaults: { seconds: [0] }, fields: [
      { key: 'seconds', control: 'numlist', label: 'Seconds (0–59)' },
    ] },
    catchup: { label: 'Catch up missed runs', fields: [] },
    nth: { label: 'Every Nth run', defaults: { every: 2 }, fields: [
      { key: 'every', control: 'number', label: 'Every', min: 2, step: 1 },
    ] },
    delay: { label: 'Start delay', defaults: { duration: 60 }, fields: [
      { key: 'duration', control: 'duration', label: 'Delay' },
    ] },
    quiet: { label: 'Quiet', defaults: { invisible: true }, fields: [
      { key: 'invisible', control: 'checkbox', label: 'Hide scheduled jobs from the UI' },
      { key: 'ephemeral', control: 'checkbox', label: 'Do not keep scheduled jobs' },
    ] },
    plugin: { label: 'Scheduler plugin', fields: [
      { key: 'plugin_id', control: 'plugin', whole: true, label: 'Scheduler plugin', options: 'scheduler_plugins',
        blank: 'Choose…', help: 'Asked once a minute whether each scheduled run goes ahead.' },
      { key: 'timezone', control: 'text', label: 'Time zone', placeholder: 'Default', help: 'IANA name, e.g. Europe/Berlin.' },
    ] },
  },
};

const ABORT = { key: 'abort', control: 'checkbox', label: 'Abort the job when reached', default: true };
const CONDITIONS = [['start', 'Job starts'], ['complete', 'Job completes'], ['success', 'Job succeeds'],
  ['error', 'Job fails'], ['warning', 'Warning'], ['critical', 'Critical'], ['abort', 'Job is aborted'],
  ['user', 'Custom error code']];

const DAY_WORDS = { start: 'jobs started', complete: 'jobs completed', success: 'successful jobs',
  error: 'failed jobs', warning: 'jobs ending in a warning', critical: 'critical failures', abort: 'aborted jobs',
  user: 'jobs with a custom error code' };

function limitSummary(l) {
  const abort = l.abort ? ' (abort)' : '';
  switch (l.type) {
    case 'time': return `Runs at most ${durationWords(l.duration)}${abort}`;
    case 'log': return `Output up to ${sizeWords(l.amount)}${abort}`;
    case 'mem': return `Memory up to ${sizeWords(l.amount)}${l.duration ? ` for ${durationWords(l.duration)}` : ''}${abort}`;
    case 'cpu': return `CPU up to ${l.amount || 0}%${l.duration ? ` for ${durationWords(l.duration)}` : ''}${abort}`;
    case 'job': return `At most ${l.amount || 0} job${l.amount === 1 ? '' : 's'} of this event at a time`;
    case 'queue': return `Queue up to ${l.amount || 0} job${l.amount === 1 ? '' : 's'} when busy`;
    case 'retry': return `Retry up to ${l.amount || 0} time${l.amount === 1 ? '' : 's'}${l.duration ? `, ${durationWords(l.duration)} apart` : ''}`;
    case 'day': return `At most ${l.amount || 0} ${DAY_WORDS[l.condition] || `“${l.condition || '…'}”`} per day; later scheduled and action launches are refused`;
    default: return '';
  }
}

export const LIMITS = {
  noun: 'Limit', typeKey: 'type', defaultType: 'time', empty: 'No limits.', summary: limitSummary,
  types: {
    time: { label: 'Maximum run time', defaults: { duration: 3600, abort: true }, fields: [
      { key: 'duration', control: 'duration', label: 'Longest run' }, ABORT] },
    log: { label: 'Maximum output size', defaults: { amount: 10 * 1024 ** 2, abort: true }, fields: [
      { key: 'amount', control: 'size', label: 'Largest output' }, ABORT] },
    mem: { label: 'Maximum memory', defaults: { amount: 1024 ** 3, duration: 60, abort: true }, fields: [
      { key: 'amount', control: 'size', label: 'Memory' }, { key: 'duration', control: 'duration', label: 'For longer than' },
      ABORT] },
    cpu: { label: 'Maximum CPU', defaults: { amount: 100, duration: 60, abort: true }, fields: [
      { key: 'amount', control: 'number', label: 'CPU % (100 = one core)', min: 1 },
      { key: 'duration', control: 'duration', label: 'For longer than' }, ABORT] },
    job: { label: 'Concurrent jobs', defaults: { amount: 1 }, fields: [
      { key: 'amount', control: 'number', label: 'At most at once', min: 1, step: 1 }] },
    queue: { label: 'Queue', defaults: { amount: 10 }, fields: [
      { key: 'amount', control: 'number', label: 'Queue up to', min: 0, step: 1, help: 'Needs a concurrent-jobs limit.' }] },
    retry: { label: 'Retries', defaults: { amount: 1 }, fields: [
      { key: 'amount', control: 'number', label: 'Retry up to', min: 0, step: 1 },
      { key: 'duration', control: 'duration', label: 'Wait between tries' }] },
    file: { label: 'Input files', fields: [
      { key: 'amount', control: 'number', label: 'At most files', min: 0, step: 1 },
      { key: 'size', control: 'size', label: 'Total size' },
      { key: 'accept', control: 'text', label: 'Accepted extensions', placeholder: '.csv, .txt' }] },
    day: { label: 'Daily cap', defaults: { condition: 'start', amount: 10 }, fields: [
      { key: 'condition', control: 'select', label: 'Count', options: CONDITIONS },
      { key: 'amount', control: 'number', label: 'At most per day', min: 0, step: 1,
        help: 'Runs started by hand (users, API keys) are never refused.' }] },
    tag: { label: 'Tag cap', fields: [{ key: 'amount', control: 'number', label: 'At most tags', min: 0, step: 1 }] },
  },
};

function conditionWords(condition, context) {
  if (condition?.startsWith('tag:')) {
    const tag = (context.lists.tags || []).find(([id]) => id === condition.slice(4));
    return `the job gets tag “${tag ? tag[1] : condition.slice(4)}”`;
  }
  const found = CONDITIONS.find(([id]) => id === condition);
  return found ? found[1].toLowerCase() : (condition || '…');
}

function actionSummary(a, context) {
  const when = `When ${conditionWords(a.condition, context).replace(/^job /, 'the job ')}`;
  switch (a.type) {
    case 'email': return `${when}: e-mail ${[a.email, ...(a.users || [])].filter(Boolean).join(', ') || '…'}`;
    case 'web_hook': return `${when}: fire web hook “${titleIn(context, 'web_hooks', a.web_hook)}”`;
    case 'run_event': return `${when}: run event “${titleIn(context, 'events', a.event_id)}”`;
    case 'channel': return `${when}: notify channel “${titleIn(context, 'channels', a.channel_id)}”`;
    case 'plugin': return `${when}: run plugin “${titleIn(context, 'action_plugins', a.plugin_id)}”`;
    case 'tag': return `${when}: add tags ${(a.tags || []).join(', ') || '…'}`;
    case 'label': return `${when}: label the job “${a.label || '…'}”`;
    case 'disable': return `${when}: disable this event`;
    case 'delete': return `${when}: delete this event`;
    case 'snapshot': return `${when}: take a server snapshot`;
    case 'suspend': {
      const told = [...(a.users || []), a.email, a.web_hook && `web hook “${titleIn(context, 'web_hooks', a.web_hook)}”`]
        .filter(Boolean);
      const only = a.sources?.length ? ` (only jobs started by ${list(a.sources.map((s) => SOURCE_WORDS[s] || s))})` : '';
      return `${when}: suspend the job until someone resumes it${told.length ? `; tell ${told.join(', ')}` : ''}${only}`;
    }
    default: return '';
  }
}

// Job sources a suspend action can be limited to (the `source` of the first job in the chain).
const SOURCES = [['scheduler', 'Scheduler'], ['plugin', 'Scheduler plugin'], ['user', 'User'], ['key', 'API key'],
  ['action', 'Action'], ['alert', 'Alert'], ['workflow', 'Workflow'], ['magic', 'Magic link'], ['startup', 'Start-up']];
const SOURCE_WORDS = Object.fromEntries(SOURCES.map(([id, label]) => [id, id === 'key' ? label : label.toLowerCase()]));

export function actionSpec(context) {
  const tagConditions = (context.lists.tags || []).map(([id, title]) => [`tag:${id}`, `Gets tag: ${title}`]);
  return {
    noun: 'Action', typeKey: 'type', defaultType: 'email', empty: 'No actions.', summary: actionSummary,
    common: [{ key: 'condition', control: 'select', label: 'When', options: [...CONDITIONS, ...tagConditions],
      default: 'error' }],
    types: {
      email: { label: 'Send e-mail', fields: [
        { key: 'email', control: 'text', label: 'E-mail addresses', placeholder: 'ops@example.com, …' },
        { key: 'users', control: 'csv', label: 'Users', help: 'Usernames, separated by commas.' }] },
      web_hook: { label: 'Fire web hook', fields: [
        { key: 'web_hook', control: 'select', label: 'Web hook', options: 'web_hooks', blank: 'Choose…' },
        { key: 'text', control: 'text', label: 'Extra text' }] },
      run_event: { label: 'Run event', fields: [
        { key: 'event_id', control: 'select', label: 'Event', options: 'events', blank: 'Choose…' }] },
      channel: { label: 'Notify channel', fields: [
        { key: 'channel_id', control: 'select', label: 'Channel', options: 'channels', blank: 'Choose…' }] },
      plugin: { label: 'Run action plugin', fields: [
        { key: 'plugin_id', control: 'plugin', whole: true, label: 'Action plugin', options: 'action_plugins',
          blank: 'Choose…' }] },
      tag: { label: 'Add tags', fields: [{ key: 'tags', control: 'picks', label: 'Tags', options: 'tags' }] },
      label: { label: 'Set label', fields: [{ key: 'label', control: 'text', label: 'Label' }] },
      suspend: { label: 'Suspend job', fields: [
        { key: 'users', control: 'csv', label: 'Notify users', help: 'Usernames, separated by commas.' },
        { key: 'email', control: 'text', label: 'Notify e-mail addresses', placeholder: 'ops@example.com, …' },
        { key: 'web_hook', control: 'select', label: 'Notify web hook', options: 'web_hooks', blank: 'None' },
        { key: 'text', control: 'text', label: 'Message' },
        { key: 'sources', control: 'picks', label: 'Only for jobs started by', options: SOURCES, optional: true,
          help: 'None checked: every job is suspended.' }] },
      snapshot: { label: 'Take snapshot', fields: [] },
      disable: { label: 'Disable event', fields: [] },
      delete: { label: 'Delete event', fields: [] },
    },
  };
}
