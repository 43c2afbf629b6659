// Small time-series line charts drawn as SVG, written for Sundial's server pages.
//
// A chart is a <figure>: a caption with the title and the newest value, an SVG plot (grid,
// one filled line per series) and the scale's top value. Colours come from CSS classes
// (s0, s1 …), never from inline styles, so the Content-Security-Policy stays strict and both
// themes apply. `update` rewrites only the points, so a chart redrawn every second is cheap.

const SVG = 'http://www.w3.org/2000/svg';
export const WIDTH = 300;
export const HEIGHT = 100;
const GRID = [0.25, 0.5, 0.75];
const COMPACT = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function html(tag, className, text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

// 1, 2, 2.5, 5 × 10^n: a scale top a person reads at a glance.
export function niceMax(peak) {
  if (!(peak > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(peak));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= peak);
  return step * power;
}

export function formatBytes(value) {
  let size = Math.abs(Number(value) || 0);
  const sign = Number(value) < 0 ? '-' : '';
  for (const unit of ['B', 'KB', 'MB', 'GB', 'TB']) {
    if (size < 1024 || unit === 'TB') return unit === 'B' ? `${sign}${Math.round(size)} B` : `${sign}${size.toFixed(1)} ${unit}`;
    size /= 1024;
  }
  return `${sign}${size.toFixed(1)} TB`;
}

// How a value reads: bytes are scaled, percentages whole, everything else with two decimals.
export function formatValue(value, kind = 'number', suffix = '') {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  const number = Number(value);
  if (kind === 'bytes') return `${formatBytes(number)}${suffix === '/sec' ? '/s' : suffix}`;
  if (kind === 'percent') return `${number.toFixed(number < 10 ? 1 : 0)}%`;
  if (Math.abs(number) >= 10000) return `${COMPACT.format(number)}${suffix}`;
  if (kind === 'integer') return `${Math.round(number)}${suffix}`;
  return `${Number.isInteger(number) ? number : number.toFixed(2)}${suffix}`;
}

// [[t, v], …] → "x,y x,y" inside the plot, t mapped from [start, end] and v from [0, top].
export function scalePoints(points, start, end, top, width = WIDTH, height = HEIGHT) {
  const span = end - start || 1;
  return points.map(([t, v]) => {
    const x = ((t - start) / span) * width;
    const y = height - Math.min(Math.max(v / top, 0), 1) * (height - 2) - 1;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(' ');
}

function areaPath(line, height = HEIGHT) {
  if (!line) return '';
  const coords = line.split(' ');
  const first = coords[0].split(',')[0];
  const last = coords[coords.length - 1].split(',')[0];
  return `M${first},${height} L${coords.join(' L')} L${last},${height} Z`;
}

export class Chart {
  // spec: {title, kind, suffix, max (fixed top or 0), series: [label …]}
  constructor(spec) {
    this.spec = spec;
    this.node = html('figure', 'chart');
    this.value = html('span', 'chart-value', '—');
    const caption = html('figcaption', 'chart-caption');
    caption.append(html('span', 'chart-title', spec.title), this.value);
    this.plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': spec.title });
    for (const level of GRID) {
      const y = (HEIGHT * level).toFixed(1);
      this.plot.append(svg('line', { class: 'chart-grid', x1: 0, x2: WIDTH, y1: y, y2: y }));
    }
    this.areas = spec.series.map((_, i) => svg('path', { class: `chart-area s${i}` }));
    this.lines = spec.series.map((_, i) => svg('polyline', { class: `chart-line s${i}`, fill: 'none',
      'vector-effect': 'non-scaling-stroke' }));
    this.plot.append(...this.areas, ...this.lines);
    this.top = html('span', 'chart-top', '');
    const frame = html('div', 'chart-plot');
    frame.append(this.plot, this.top);
    this.node.append(caption, frame);
    if (spec.series.length > 1) this.node.append(this.legend());
  }

  legend() {
    const list = html('ul', 'chart-legend');
    this.legendValues = this.spec.series.map((label, i) => {
      const item = html('li', `s${i}`);
      const value = html('span', 'chart-legend-value', '—');
      item.append(html('span', 'chart-key'), `${label} `, value);
      list.append(item);
      return value;
    });
    return list;
  }

  // seriesPoints: one [[t, v], …] per series; [start, end] is the visible time window.
  update(seriesPoints, start, end) {
    const { kind, suffix } = this.spec;
    const peak = Math.max(0, ...seriesPoints.flat().map(([, v]) => v));
    const top = this.spec.max || niceMax(peak);
    seriesPoints.forEach((points, i) => {
      const line = points.length > 1 ? scalePoints(points, start, end, top) : '';
      this.lines[i].setAttribute('points', line);
      this.areas[i].setAttribute('d', areaPath(line));
    });
    const latest = seriesPoints.map((points) => (points.length ? points[points.length - 1][1] : null));
    const shown = latest.map((v) => formatValue(v, kind, suffix));
    this.value.textContent = seriesPoints.length > 1 ? '' : shown[0];
    this.legendValues?.forEach((node, i) => { node.textContent = shown[i]; });
    this.top.textContent = formatValue(top, kind, suffix);
    this.node.dataset.count = String(Math.max(0, ...seriesPoints.map((p) => p.length)));
    this.plot.setAttribute('aria-label', `${this.spec.title}: ${shown.join(', ')} now; scale up to ${this.top.textContent}`);
  }
}
