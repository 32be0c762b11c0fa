// @x/example-transport-plugin: a transport written outside packages/, against the
// published interfaces only. See README.md for the walkthrough.
export { BAR, BAR_SIZE, CMD, CMD_STATUS, DB, QCMD, QREG, Q_ENABLE, RING_ALIGN, createBarLink, qreg, type BarLink, type BarLinkOptions } from './bar.js';
export { EpTransport, attachEp, type EpOptions } from './ep.js';
export { RcTransport, attachRc, openRc, type RcOptions } from './rc.js';
