// Editable lists of small objects (an event's triggers, limits and actions), driven by specs.
//
// A spec names the object's types; each type lists its fields and each field names a control
// kind below. A row keeps the object it was made from, so keys the editor does not show
// survive a save; changing a row's type starts that row afresh. Types the spec does not know
// are edited as JSON, so nothing stored is ever dropped or mangled by the editor.
//
// A field with `whole: true` gets the whole object and reads back an object of keys to set (a
// plugin choice with its params). A type with `saveAs` is an input form of another type (a
// crontab expression is saved as a schedule trigger, which the API converts).

import { el } from '../dom.js';
import { paramInputs, paramSet, readParams } from './params.js';

let counter = 0;
const uid = (prefix) => `${prefix}-${(counter += 1)}`;

export const DURATION_UNITS = [['seconds', 1], ['minutes', 60], ['hours', 3600], ['days', 86400]];
export const SIZE_UNITS = [['KB', 1024], ['MB', 1024 ** 2], ['GB', 1024 ** 3]];
export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function field(spec, id, ...controls) {
  const help = spec.help ? el('p', { class: 'help', id: `${id}-help` }, spec.help) : '';
  return el('div', { class: `field${spec.wide ? ' wide' : ''}` }, el('label', { for: id }, spec.label), ...controls, help);
}

function described(spec, id) {
  return spec.help ? { 'aria-describedby': `${id}-help` } : {};
}

// The largest unit that divides the value evenly: 3600 s shows as 1 hours → "1" + "hours".
export function splitUnits(value, units) {
  const number = Number(value) || 0;
  const unit = [...units].reverse().find(([, size]) => number && number % size === 0) || units[0];
  return [number ? number / unit[1] : '', unit[1]];
}

function unitControl(spec, value, units) {
  const id = uid('f');
  const [amount, size] = splitUnits(value, units);
  const input = el('input', { id, type: 'number', min: 0, step: 'any', inputmode: 'decimal', value: amount,
    ...described(spec, id) });
  const select = el('select', { 'aria-label': `${spec.label} unit` },
    ...units.map(([label, unit]) => el('option', { value: unit, selected: unit === size }, label)));
  const node = field(spec, id, el('div', { class: 'unit-input' }, input, select));
  return { node, focus: input, read: () => (input.value === '' ? undefined : Number(input.value) * Number(select.value)) };
}

function localInput(epoch) {
  if (!epoch) return '';
  const date = new Date(Number(epoch) * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function choiceGroup(spec, value, labels, first) {
  const chosen = new Set((Array.isArray(value) ? value : []).map(Number));
  const boxes = labels.map((label, index) => el('input', { type: 'checkbox', value: index + first,
    checked: chosen.has(index + first) }));
  const node = el('fieldset', { class: 'field choices compact' }, el('legend', {}, spec.label),
    el('div', { class: 'choice-row' }, ...boxes.map((box, i) => el('label', { class: 'choice' }, box, ` ${labels[i]}`))));
  const read = () => {
    const picked = boxes.filter((box) => box.checked).map((box) => Number(box.value));
    return picked.length ? picked : undefined;
  };
  return { node, focus: boxes[0], read };
}

function options(spec, context) {
  const list = typeof spec.options === 'string' ? (context.lists[spec.options] || []) : spec.options;
  return spec.blank ? [['', spec.blank], ...list] : list;
}

// Each control kind: (field spec, current value, context) → {node, read(), focus}.
export const CONTROLS = {
  text(spec, value) {
    const id = uid('f');
    const input = el('input', { id, value: value ?? '', autocomplete: 'off', ...described(spec, id),
      placeholder: spec.placeholder, class: spec.mono ? 'mono' : null, spellcheck: spec.mono ? 'false' : null });
    const read = () => (input.value === '' && !spec.keepEmpty ? undefined : input.value);
    return { node: field(spec, id, input), focus: input, read };
  },
  number(spec, value) {
    const id = uid('f');
    const input = el('input', { id, type: 'number', step: spec.step || 'any', min: spec.min, max: spec.max,
      inputmode: 'decimal', value: value ?? '', ...described(spec, id) });
    return { node: field(spec, id, input), focus: input,
      read: () => (input.value === '' ? undefined : Number(input.value)) };
  },
  checkbox(spec, value) {
    const id = uid('f');
    const input = el('input', { id, type: 'checkbox', checked: value === undefined ? Boolean(spec.default) : Boolean(value) });
    const node = el('div', { class: 'field check' }, input, el('label', { for: id }, spec.label));
    return { node, focus: input, read: () => input.checked };
  },
  select(spec, value, context) {
    const id = uid('f');
    const choices = options(spec, context);
    const known = choices.some(([v]) => v === value);
    const extra = value && !known ? [[value, `${value} (not found)`]] : [];
    const select = el('select', { id, ...described(spec, id) },
      ...[...choices, ...extra].map(([v, label]) => el('option', { value: v, selected: v === (value ?? spec.default) }, label)));
    return { node: field(spec, id, select), focus: select, read: () => (select.value === '' ? undefined : select.value) };
  },
  picks(spec, value, context) {
    const chosen = new Set(Array.isArray(value) ? value : []);
    const list = options(spec, context);
    const boxes = list.map(([v]) => el('input', { type: 'checkbox', value: v, checked: chosen.has(v) }));
    const help = spec.help ? el('p', { class: 'help' }, spec.help) : '';
    const node = el('fieldset', { class: `field choices compact${spec.wide ? ' wide' : ''}` }, el('legend', {}, spec.label),
      help, list.length ? el('div', { class: 'choice-row' }, ...boxes.map((box, i) => el('label', { class: 'choice' }, box, ` ${list[i][1]}`)))
        : el('p', { class: 'muted' }, 'None defined yet.'));
    const read = () => {
      const picked = boxes.filter((b) => b.checked).map((b) => b.value);
      return spec.optional && !picked.length ? undefined : picked;
    };
    return { node, focus: boxes[0], read };
  },
  // A plugin (action or scheduler) and its parameters, drawn from the plugin's definitions.
  // Reads {plugin_id, params}; choosing another plugin starts its params from the defaults.
  plugin(spec, value, context) {
    const id = uid('f');
    const current = value?.plugin_id;
    const choices = options(spec, context);
    const extra = current && !choices.some(([v]) => v === current) ? [[current, `${current} (not found)`]] : [];
    const select = el('select', { id, ...described(spec, id) },
      ...[...choices, ...extra].map(([v, label]) => el('option', { value: v, selected: v === current }, label)));
    const box = el('div', { class: 'plugin-params', 'data-plugin-params': '' });
    let drawn = false; // false: no definitions on the page (plugin deleted), so stored params are kept as they are
    const draw = (params) => {
      const set = select.value ? paramSet(select.value, params) : null;
      drawn = Boolean(set);
      box.replaceChildren(...(set ? [set] : []));
      if (set && !paramInputs(box).length) box.append(el('p', { class: 'muted' }, 'This plugin has no parameters.'));
    };
    draw(value?.params && typeof value.params === 'object' ? value.params : {});
    select.addEventListener('change', () => draw({}));
    const node = el('div', { class: 'plugin-field' }, field(spec, id, select), box);
    const read = () => {
      if (!select.value) return { plugin_id: undefined, params: undefined };
      return drawn ? { plugin_id: select.value, params: readParams(box) } : { plugin_id: select.value };
    };
    return { node, focus: select, read };
  },
  duration: (spec, value) => unitControl(spec, value, DURATION_UNITS),
  size: (spec, value) => unitControl(spec, value, SIZE_UNITS),
  datetime(spec, value) {
    const id = uid('f');
    const input = el('input', { id, type: 'datetime-local', step: 60, value: localInput(value), ...described(spec, id) });
    const read = () => (input.value ? Math.floor(new Date(input.value).getTime() / 1000) : undefined);
    return { node: field(spec, id, input), focus: input, read };
  },
  numlist(spec, value) {
    const id = uid('f');
    const input = el('input', { id, value: Array.isArray(value) ? value.join(', ') : '', inputmode: 'numeric',
      pattern: '\\s*-?\\d+(\\s*,\\s*-?\\d+)*\\s*', placeholder: spec.placeholder || 'any', autocomplete: 'off',
      title: 'Whole numbers separated by commas', ...described(spec, id) });
    const read = () => {
      const parts = input.value.split(',').map((part) => part.trim()).filter(Boolean);
      return parts.length ? parts.map(Number) : undefined;
    };
    return { node: field(spec, id, input), focus: input, read };
  },
  csv(spec, value) {
    const id = uid('f');
    const input = el('input', { id, value: Array.isArray(value) ? value.join(', ') : (value ?? ''), autocomplete: 'off',
      ...described(spec, id) });
    const read = () => {
      const parts = input.value.split(',').map((part) => part.trim()).filter(Boolean);
      return parts.length ? parts : undefined;
    };
    return { node: field(spec, id, input), focus: input, read };
  },
  weekdays: (spec, value) => choiceGroup(spec, value, WEEKDAYS, 0),
  months: (spec, value) => choiceGroup(spec, value, MONTHS, 1),
  json(spec, value) {
    const id = uid('f');
    const area = el('textarea', { id, class: 'mono', rows: 4, spellcheck: 'false', ...described(spec, id) });
    area.value = JSON.stringify(value ?? {}, null, 2);
    const read = () => {
      try {
        return JSON.parse(area.value);
      } catch {
        throw new Error(`${spec.label}: the text is not valid JSON.`);
      }
    };
    return { node: field({ ...spec, wide: true }, id, area), focus: area, read };
  },
};

const ADVANCED = { label: 'Advanced', fields: [{ key: '*', control: 'json', label: 'Settings (JSON)' }] };

function typeSpec(spec, type) {
  return spec.types[type] || { ...ADVANCED, label: `${type} (edited as JSON)` };
}

class Row {
  constructor(list, item) {
    this.list = list;
    this.orig = item && typeof item === 'object' ? item : {};
    this.type = String(this.orig[list.spec.typeKey] || list.spec.defaultType);
    this.node = el('fieldset', { class: 'row-item' });
    this.render();
  }

  render() {
    const { spec } = this.list;
    this.legend = el('legend', {}, '');
    this.typeSelect = el('select', { 'aria-label': `${spec.noun} type` },
      ...Object.entries(spec.types).map(([value, t]) => el('option', { value, selected: value === this.type }, t.label)));
    if (!spec.types[this.type]) this.typeSelect.append(el('option', { value: this.type, selected: true }, this.type));
    const enabledId = uid('en');
    this.enabled = el('input', { type: 'checkbox', id: enabledId, checked: this.orig.enabled !== false });
    this.remove = el('button', { type: 'button', class: 'btn ghost small danger-text' }, 'Remove');
    this.summary = el('p', { class: 'row-summary' });
    this.body = el('div', { class: 'row-fields' });
    const head = el('div', { class: 'row-head' }, this.typeSelect,
      el('span', { class: 'field check' }, this.enabled, el('label', { for: enabledId }, 'Enabled')), this.remove);
    this.node.replaceChildren(this.legend, head, this.body, this.summary);
    this.typeSelect.addEventListener('change', () => this.changeType(this.typeSelect.value));
    this.remove.addEventListener('click', () => this.list.removeRow(this));
    this.renderFields(this.orig);
  }

  renderFields(values) {
    const fields = [...(this.list.spec.common || []), ...typeSpec(this.list.spec, this.type).fields];
    this.controls = fields.map((f) => {
      const value = f.key === '*' ? this.advancedValue(values) : (f.whole ? values : values[f.key]);
      return { key: f.key, whole: Boolean(f.whole), ...CONTROLS[f.control](f, value, this.list.context) };
    });
    this.body.replaceChildren(...this.controls.map((c) => c.node));
    this.refresh();
  }

  advancedValue(values) {
    const { [this.list.spec.typeKey]: _type, enabled: _enabled, ...rest } = values;
    return rest;
  }

  changeType(type) {
    const common = Object.fromEntries((this.list.spec.common || []).map((f) => [f.key, this.valueOf(f.key)]));
    this.type = type;
    this.orig = { [this.list.spec.typeKey]: type, enabled: this.enabled.checked, ...common };
    this.renderFields(this.orig);
    this.list.changed();
  }

  valueOf(key) {
    const control = this.controls.find((c) => c.key === key);
    try { return control ? control.read() : undefined; } catch { return undefined; }
  }

  read() {
    const type = typeSpec(this.list.spec, this.type).saveAs || this.type;
    const out = { ...this.orig, [this.list.spec.typeKey]: type, enabled: this.enabled.checked };
    for (const control of this.controls) {
      const value = control.read();
      if (control.key === '*') Object.assign(out, value);
      else if (control.whole) {
        for (const [key, part] of Object.entries(value)) {
          if (part === undefined) delete out[key];
          else out[key] = part;
        }
      } else if (value === undefined) delete out[control.key];
      else out[control.key] = value;
    }
    return out;
  }

  refresh() {
    const number = this.list.rows.indexOf(this) + 1 || this.list.rows.length + 1;
    this.legend.textContent = `${this.list.spec.noun} ${number}`;
    this.remove.setAttribute('aria-label', `Remove ${this.list.spec.noun.toLowerCase()} ${number}`);
    let words = '';
    try { words = this.list.spec.summary(this.read(), this.list.context); } catch { words = ''; }
    this.summary.textContent = words;
    this.summary.hidden = !words;
    this.node.classList.toggle('row-disabled', !this.enabled.checked);
  }

  setInvalid(on) {
    this.node.classList.toggle('invalid', on);
    if (on) this.node.setAttribute('aria-invalid', 'true');
    else this.node.removeAttribute('aria-invalid');
  }
}

export class RowList {
  constructor(container, spec, items, context) {
    this.container = container;
    this.spec = spec;
    this.context = context;
    this.rows = [];
    this.listeners = [];
    this.empty = el('p', { class: 'muted row-empty' }, spec.empty);
    for (const item of items || []) this.rows.push(new Row(this, item));
    container.addEventListener('input', () => this.changed());
    container.addEventListener('change', () => this.changed());
    this.draw();
  }

  draw() {
    this.container.replaceChildren(...(this.rows.length ? this.rows.map((r) => r.node) : [this.empty]));
    for (const row of this.rows) row.refresh();
  }

  add(type) {
    const row = new Row(this, { [this.spec.typeKey]: type, enabled: true, ...(this.spec.types[type]?.defaults || {}) });
    this.rows.push(row);
    this.draw();
    this.changed();
    (row.controls[0]?.focus || row.typeSelect).focus();
    return row;
  }

  removeRow(row) {
    this.rows = this.rows.filter((r) => r !== row);
    this.draw();
    this.changed();
    this.spec.afterRemove?.();
  }

  changed() {
    for (const row of this.rows) row.refresh();
    for (const listener of this.listeners) listener();
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  read() {
    return this.rows.map((row) => row.read());
  }

  // Marks one row (and, when given, one control in it) as the one the API refused.
  markInvalid(index, control = null) {
    this.rows.forEach((row, i) => row.setInvalid(i === index));
    const row = this.rows[index];
    if (row) {
      row.node.scrollIntoView({ block: 'center' });
      if (control) control.setAttribute('aria-invalid', 'true');
      (control || row.controls[0]?.focus || row.typeSelect).focus();
    }
  }

  // The index of the first row the predicate accepts (given the row's object and its node), or -1.
  findRow(predicate) {
    return this.rows.findIndex((row) => {
      try { return predicate(row.read(), row.node); } catch { return false; }
    });
  }

  clearInvalid() {
    for (const row of this.rows) row.setInvalid(false);
    for (const node of this.container.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  }
}
