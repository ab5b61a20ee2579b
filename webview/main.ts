// The dashboard webview bundle. The dashboard itself arrives with its own issue; the bundle exists so that the
// build, the CSP and the packaging are in place from the start.
export {};
