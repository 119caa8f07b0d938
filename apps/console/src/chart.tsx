/** A horizontal bar chart in SVG (no canvas, no inline style: it passes the console's CSP as it is). */
export function BarChart({ title, bars }: { title: string; bars: { label: string; value: number }[] }) {
  const shown = bars.slice(0, 20);
  const max = Math.max(1, ...shown.map((b) => b.value));
  const row = 22;
  const labelW = 160;
  const width = 560;
  const height = shown.length * row + 8;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="chart-title" preserveAspectRatio="xMinYMin meet">
        <title id="chart-title">{title}</title>
        {shown.map((b, i) => {
          const w = Math.max(1, ((width - labelW - 60) * b.value) / max);
          const y = i * row + 4;
          return (
            <g key={i}>
              <text x={labelW - 6} y={y + 14} text-anchor="end" class="chart-label">
                {b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label}
              </text>
              <rect x={labelW} y={y} width={w} height={row - 6} class="chart-bar" />
              <text x={labelW + w + 4} y={y + 14} class="chart-value">
                {b.value}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        {title}
        {bars.length > shown.length ? ` (first ${shown.length} of ${bars.length})` : ''}
      </figcaption>
    </figure>
  );
}
