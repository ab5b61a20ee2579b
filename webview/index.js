// The dashboard bundle's entry. Order matters: boot asks the host for the first page before anything else runs; main
// then puts the dashboard's lit components in place, which show that page as soon as it arrives, and only after it
// defines the vscode-elements components (components.js), which upgrade the elements already in place.
import './boot';
import './main';
