/** The task every scenario uses: a prompt and a summary of realistic size, so images and snapshot times are not flattered. */
export const PROMPT = 'Refactor the module and keep the public API stable. '.repeat(5).slice(0, 256);
export const SUMMARY = 'Done: changed 3 files, tests pass, no API change. '.repeat(3).slice(0, 128);
