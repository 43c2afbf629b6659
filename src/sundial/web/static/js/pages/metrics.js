// How Sundial's monitor definitions turn into numbers for the charts (shared by server.js and tests).

// The chart kind of a monitor: percentages have a fixed top, bytes are scaled, counts are whole.
export function kindOf(type, suffix) {
  if (suffix === '%') return 'percent';
  if (type === 'bytes') return 'bytes';
  if (['integer', 'seconds', 'milliseconds'].includes(type)) return 'integer';
  return 'number';
}

// QuickMon rows hold raw values; delta monitors are cumulative counters, so the reader turns
// consecutive rows into a rate (floored at delta_min_value, per second when divide_by_delta).
export function quickPoints(rows, monitor) {
  const points = [];
  for (let i = 0; i < rows.length; i += 1) {
    const value = Number(rows[i][monitor.id]);
    if (Number.isNaN(value)) continue;
    if (!monitor.delta) {
      points.push([rows[i].date, value]);
      continue;
    }
    if (i === 0) continue;
    let delta = value - Number(rows[i - 1][monitor.id]);
    if (typeof monitor.delta_min_value === 'number') delta = Math.max(delta, monitor.delta_min_value);
    if (monitor.divide_by_delta) delta /= Math.max(rows[i].date - rows[i - 1].date, 1);
    if (!Number.isNaN(delta)) points.push([rows[i].date, delta]);
  }
  return points;
}

// Minute timeline items {date, totals, count} → one series per monitor id that appears in them,
// in the order of the monitor definitions, unknown ids last (titled by their id).
export function minuteSeries(rows, monitors) {
  const known = new Map(monitors.map((m) => [m.id, m]));
  const ids = [...new Set([...monitors.map((m) => m.id), ...rows.flatMap((r) => Object.keys(r.totals || {}))])];
  return ids.filter((id) => rows.some((r) => r.totals && id in r.totals)).map((id) => ({
    monitor: known.get(id) || { id, title: id },
    points: rows.filter((r) => r.totals && id in r.totals)
      .map((r) => [r.date, Number(r.totals[id]) / Math.max(Number(r.count) || 1, 1)]),
  }));
}
