// Scales and tick marks shared by the charts.
import { time as formatTime } from "../format.js";

export function linear([d0, d1], [r0, r1]) {
  const span = d1 - d0 || 1;
  const f = (x) => r0 + ((x - d0) / span) * (r1 - r0);
  f.domain = [d0, d1];
  return f;
}

// Round tick values (1, 2, 5 x 10^k) covering [lo, hi], about `count` of them.
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// [lo, hi] widened to round numbers; `zero` keeps 0 inside (counts, rates).
export function niceDomain(values, { zero = false, min = null, max = null } = {}) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  let lo = min ?? (finite.length ? Math.min(...finite) : 0);
  let hi = max ?? (finite.length ? Math.max(...finite) : 1);
  if (zero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= zero && lo === 0 ? 0 : pad;
    hi += pad;
  }
  const t = ticks(lo, hi, 4);
  const step = t.length > 1 ? t[1] - t[0] : 0;
  if (min === null && step) lo = Math.min(lo, Math.floor(lo / step) * step);
  if (max === null && step) hi = Math.max(hi, Math.ceil(hi / step) * step);
  return [lo, hi];
}

const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map(
  (s) => s * 1000,
);

// Time ticks at round local times; labels carry the date when the range spans days.
export function timeTicks(t0, t1, count = 6) {
  const span = t1 - t0;
  const step = TIME_STEPS.find((s) => span / s <= count) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date(t0).getTimezoneOffset() * 60000;
  const out = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) {
    out.push({ value: t, label: formatTime(t, step >= 86400000 || span > 172800000) });
  }
  return out;
}
