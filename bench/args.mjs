// Command-line options of the benchmarks: `--name value`.

/** The value after `--name`: a number when the default is one, else the string; `dflt` when absent. */
export function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const value = process.argv[i + 1];
  return typeof dflt === 'number' ? Number(value) : value;
}
