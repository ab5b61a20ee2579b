/** The bundle imports its stylesheet as text (esbuild's `text` loader) and adopts it as a constructed stylesheet. */
declare module '*.css' {
  const text: string;
  export default text;
}
