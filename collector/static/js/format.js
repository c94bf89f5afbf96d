// Number, byte, duration and time formatting for people: short, aligned, never "NaN".
const DASH = "–";

export function isNum(x) {
  return typeof x === "number" && Number.isFinite(x);
}

export function num(x, digits = 3) {
  if (!isNum(x)) return DASH;
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

export function fixed(x, digits = 3) {
  return isNum(x) ? x.toFixed(digits) : DASH;
}

export function int(x) {
  return isNum(x) ? Math.round(x).toLocaleString("en-US") : DASH;
}

export function compact(x) {
  if (!isNum(x)) return DASH;
  return x.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 1 });
}

export function pct(x, digits = 1) {
  if (!isNum(x)) return DASH;
  const v = x * 100;
  if (v !== 0 && Math.abs(v) < 0.1) return "<0.1%";
  return `${v.toFixed(digits)}%`;
}

export function pvalue(p) {
  if (!isNum(p)) return DASH;
  return p < 1e-4 ? "<0.0001" : p.toFixed(4);
}

export function bytes(x) {
  if (!isNum(x)) return DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = x;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function ms(x) {
  if (!isNum(x)) return DASH;
  if (x < 1) return `${(x * 1000).toFixed(0)} µs`;
  if (x < 1000) return `${x.toPrecision(3)} ms`;
  return `${(x / 1000).toPrecision(3)} s`;
}

export function rate(x) {
  return isNum(x) ? `${num(x, 3)}/s` : DASH;
}

const pad = (n) => String(n).padStart(2, "0");

export function time(t, withDate = false) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}` : hm;
}

export function datetime(t) {
  return time(t, true);
}

export function ago(t, now = Date.now()) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
