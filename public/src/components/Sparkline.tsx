/** A small line chart of a series (nulls are gaps), described in words for screen readers. */
export function Sparkline({ values, label, unit = "" }: { values: (number | null)[]; label: string; unit?: string }) {
  const width = 160;
  const height = 36;
  const known = values.filter((value): value is number => value !== null);
  const max = Math.max(1e-9, ...known);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const segments: string[][] = [[]];
  values.forEach((value, index) => {
    if (value === null) {
      if (segments.at(-1)!.length > 0) segments.push([]);
      return;
    }
    segments.at(-1)!.push(`${(index * step).toFixed(1)},${(height - 2 - (value / max) * (height - 4)).toFixed(1)}`);
  });
  const summary =
    known.length === 0
      ? `${label}: no data yet`
      : `${label} over the last ${values.length} samples: from ${Math.min(...known)}${unit} to ${Math.max(...known)}${unit}`;
  return (
    <svg
      role="img"
      aria-label={summary}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      className="text-blue-700"
    >
      {segments
        .filter((points) => points.length > 0)
        .map((points, index) =>
          points.length === 1 ? (
            <circle key={index} cx={points[0].split(",")[0]} cy={points[0].split(",")[1]} r="1.5" fill="currentColor" />
          ) : (
            <polyline key={index} points={points.join(" ")} fill="none" stroke="currentColor" strokeWidth="1.5" />
          ),
        )}
    </svg>
  );
}
