//! The library half of `switchboard-cli`: what the `switchboard` command shares with
//! `switchboard-serve`, the serve-only binary installed beside it.
//!
//! `switchboard serve` runs one of our MCP servers, usually as a long-lived child of Claude
//! Desktop or another host. The `switchboard` binary carries the whole host side (HTTP
//! clients, TLS, the agent, the gateway, the CLI's parser), and a server started from it keeps
//! the pages of all that it touched while starting. `switchboard-serve` links only the server
//! kit, the three servers and their storage. So `switchboard serve ...` hands over to it
//! ([`serve::hand_over`]) before parsing anything, and both binaries run the same
//! [`serve::serve`]. See `docs/performance.md` for what it saves.

pub mod exit;
pub mod serve;
