/** An SVG imported by the app is inlined as a data URL (scripts/build-web.mjs): no request of its own. */
declare module '*.svg' {
  const url: string;
  export default url;
}
