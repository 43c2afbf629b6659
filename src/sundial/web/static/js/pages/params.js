// Plugin parameter controls (rendered on the server by the `param_control` macro from the
// plugin's definitions) read back into a params object, and filled from one. The event editor
// reads its event plugin's set; action and scheduler plugin rows clone a per-plugin <template>
// (`data-param-template`) and fill it with the row's stored params; the job page's Resume form
// compares values with the ones it started from, so only changes are sent.

let copies = 0;

// One control's value, by its data-read kind; a JSON box that does not parse throws an Error
// with `field` set to the control, so the caller can mark it.
export function readParam(input) {
  const title = input.dataset.title || input.dataset.param;
  switch (input.dataset.read) {
    case 'bool': return input.checked;
    case 'number': return input.value === '' ? null : Number(input.value);
    case 'list': return [...input.selectedOptions].map((option) => option.value);
    case 'json':
      if (input.value.trim() === '') return null;
      try {
        return JSON.parse(input.value);
      } catch {
        if (input.type === 'hidden') return input.value;
        throw Object.assign(new Error(`${title}: the text is not valid JSON.`), { field: input });
      }
    default: return input.value;
  }
}

export function paramInputs(root) {
  return root ? [...root.querySelectorAll('[data-param]')] : [];
}

export function readParams(root) {
  const params = {};
  for (const input of paramInputs(root)) params[input.dataset.param] = readParam(input);
  return params;
}

// A select keeps a stored value that is no longer among its options, so saving does not drop it.
function chooseOption(select, value) {
  const text = value === null || value === undefined ? '' : String(value);
  if (![...select.options].some((option) => option.value === text)) {
    select.append(new Option(`${text} (not in the list)`, text));
  }
  select.value = text;
}

export function writeParam(input, value) {
  switch (input.dataset.read) {
    case 'bool': input.checked = Boolean(value); break;
    case 'list': {
      const chosen = new Set((Array.isArray(value) ? value : [value]).map(String));
      for (const option of input.options) option.selected = chosen.has(option.value);
      break;
    }
    case 'json': input.value = typeof value === 'string' ? value : JSON.stringify(value ?? null, null, 2); break;
    default:
      if (input.tagName === 'SELECT') chooseOption(input, value);
      else input.value = value === null || value === undefined ? '' : String(value);
  }
}

// Ids inside a cloned set get a suffix, so two rows with the same plugin keep their labels apart.
function renumber(root, suffix) {
  for (const node of root.querySelectorAll('[id]')) node.id = `${node.id}-${suffix}`;
  for (const node of root.querySelectorAll('label[for]')) node.htmlFor = `${node.htmlFor}-${suffix}`;
  for (const node of root.querySelectorAll('[aria-describedby]')) {
    node.setAttribute('aria-describedby', `${node.getAttribute('aria-describedby')}-${suffix}`);
  }
}

// A fresh copy of a plugin's controls with `values` filled in (keys it lacks keep the defaults);
// null when the page has no template for that plugin.
export function paramSet(pluginId, values = {}) {
  const template = [...document.querySelectorAll('template[data-param-template]')]
    .find((node) => node.dataset.paramTemplate === pluginId);
  if (!template) return null;
  const copy = template.content.cloneNode(true);
  renumber(copy, (copies += 1));
  for (const input of paramInputs(copy)) {
    if (Object.hasOwn(values, input.dataset.param)) writeParam(input, values[input.dataset.param]);
  }
  return copy;
}

// The control whose title ends an API message ("Missing required parameter: Greeting").
export function paramByTitle(root, message) {
  return paramInputs(root).find((input) => input.dataset.title && message.endsWith(`: ${input.dataset.title}`)) || null;
}
