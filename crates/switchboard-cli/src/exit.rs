//! The documented exit codes of `switchboard` (and of `switchboard-serve`, which uses the
//! ones that apply to a server).

pub const TOOL_ERROR: u8 = 1;
pub const USAGE: u8 = 2;
pub const CONNECTION: u8 = 3;
pub const AGENT: u8 = 4;
pub const INTERRUPTED: u8 = 130;
