// A tiny line chart drawn as SVG: no library, no inline styles (colours come from CSS classes),
// scaled to its own peak so the shape of a job's CPU or memory use is visible at a glance.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 240;
const HEIGHT = 40;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

export function sparkPoints(values, width = WIDTH, height = HEIGHT) {
  const peak = Math.max(...values, 0) || 1;
  const step = values.length > 1 ? width / (values.length - 1) : width;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / peak) * (height - 2) - 1).toFixed(1)}`).join(' ');
}

export function drawSpark(values, label, className) {
  const figure = document.createElement('figure');
  figure.className = `spark ${className}`;
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${label} over the last ${values.length} seconds` });
  chart.append(svg('polyline', { points: sparkPoints(values), fill: 'none', 'stroke-width': 1.5,
    'vector-effect': 'non-scaling-stroke' }));
  const caption = document.createElement('figcaption');
  caption.textContent = label;
  figure.append(chart, caption);
  return figure;
}
