// Lists of {name, value} rows inside a declarative form: web hook headers, secret variables.
//
//   <fieldset data-pairs="headers"> <div data-pair-rows> rows… </div>
//     <template data-pair-template> one empty row </template> <button data-pair-add> </fieldset>
//
// Row controls carry no `name`, so readForm's element loop skips them; readPairs turns the rows
// into an array under the fieldset's name. Rows where both boxes are empty are left out.

export function readPairs(box) {
  const rows = [...box.querySelectorAll('[data-pair-rows] > [data-pair-row]')];
  return rows.map((row) => ({
    name: row.querySelector('[data-pair-key="name"]').value.trim(),
    value: row.querySelector('[data-pair-key="value"]').value,
  })).filter((pair) => pair.name !== '' || pair.value !== '');
}

// Every pairs fieldset of a form that is not disabled, as params entries.
export function readAllPairs(form, params) {
  for (const box of form.querySelectorAll('[data-pairs]')) {
    if (!box.matches(':disabled')) params[box.dataset.pairs] = readPairs(box);
  }
}

// Labels carry the row number ("Header 2") so a screen reader can tell the rows apart.
function renumber(box) {
  box.querySelectorAll('[data-pair-rows] > [data-pair-row]').forEach((row, index) => {
    for (const control of row.querySelectorAll('[data-pair-label]')) {
      control.setAttribute('aria-label', `${control.dataset.pairLabel} ${index + 1}`);
    }
    const remove = row.querySelector('[data-pair-remove]');
    const label = row.querySelector('[data-pair-key="name"]')?.dataset.pairLabel || 'row';
    if (remove) remove.setAttribute('aria-label', `Remove ${label.toLowerCase()} ${index + 1}`);
  });
}

function addRow(box) {
  const template = box.querySelector('template[data-pair-template]');
  const list = box.querySelector('[data-pair-rows]');
  if (!template || !list) return;
  list.append(template.content.cloneNode(true));
  renumber(box);
  list.lastElementChild?.querySelector('input, textarea')?.focus();
}

function removeRow(button) {
  const box = button.closest('[data-pairs]');
  const row = button.closest('[data-pair-row]');
  row.remove();
  renumber(box);
  box.querySelector('[data-pair-add]')?.focus();
}

export function bindPairs(root = document) {
  root.addEventListener('click', (event) => {
    const add = event.target.closest('[data-pair-add]');
    if (add) addRow(add.closest('[data-pairs]'));
    const remove = event.target.closest('[data-pair-remove]');
    if (remove) removeRow(remove);
  });
}
