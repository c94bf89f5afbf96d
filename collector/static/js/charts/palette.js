// Colours. Series use the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies);
// drift cells run from pale to dark along one hue ramp, so lightness alone orders them.
export const SERIES = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#4d4d4d"];

export function seriesColor(i) {
  return SERIES[i % SERIES.length];
}

const RAMP = [
  [0, [237, 242, 247]],
  [0.5, [253, 230, 138]],
  [1, [245, 158, 11]],
  [2, [194, 65, 12]],
  [4, [127, 29, 29]],
];

// PSI -> fill. Stops at 0, the warning band's middle, the drift threshold, 2x and 4x it.
export function psiColor(psi, warning, drift) {
  if (typeof psi !== "number" || !Number.isFinite(psi)) return null;
  const x =
    psi <= warning
      ? (psi / (warning || 1)) * 0.5
      : psi <= drift
        ? 0.5 + ((psi - warning) / (drift - warning || 1)) * 0.5
        : psi / drift;
  let i = 0;
  while (i < RAMP.length - 2 && x > RAMP[i + 1][0]) i += 1;
  const [a, ca] = RAMP[i];
  const [b, cb] = RAMP[i + 1];
  const t = Math.max(0, Math.min(1, (x - a) / (b - a)));
  const c = ca.map((v, k) => Math.round(v + (cb[k] - v) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
